/**
 * The picture of docs/grafana-dashboard.json in the README, drawn from real data. Grafana itself is
 * not to be had here, so the nearest real thing: a small real stack runs a scenario, a real Prometheus
 * (Debian's, scripts/prometheus.sh) scrapes the workers' /metrics throughout, every panel's query is
 * asked of that Prometheus (query_range, the dashboard's variables at "All"), each panel is drawn with
 * Apache ECharts (scripts/dashboard/render.ts) in the dashboard's own grid, and headless Chromium
 * (test/support/browser.ts) takes the screenshot.
 *
 *   npm run build
 *   node dist/scripts/dashboard-picture.js [--out docs/images/grafana-dashboard.png] [--data docs/images/grafana-dashboard-data.json]
 *                                          [--render-only] [--hold 90]
 *
 * The stack is the integration tests' (test/support/global-setup.ts: a private Temporal dev server and moto
 * on free loopback ports, stopped at the end): two `nstance worker` processes with metrics on, behind the EC2
 * fault proxy, and a simulated fleet whose agents register with the leader's agent API. The scenario (about
 * six minutes): a group of 3; a scale-up to 5 through capacity and throttle refusals; a launch EC2 refuses
 * outright; an agent gone silent (unhealthy, replaced); an orphan the collector terminates; a scale-down to 2;
 * the leader killed (a handoff); then --hold seconds of quiet so the rate panels settle.
 * --data keeps Prometheus's answers (what the picture shows), and --render-only draws them again without a stack.
 * Exit 1 naming what is missing (Prometheus, Chromium, ECharts) or what failed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RunInstancesCommand } from '@aws-sdk/client-ec2';
import { groupStatus } from '../client/ops/status';
import { SimulatedFleet } from '../client/agent/fleet';
import { TAG } from '../common/names';
import { findChromium, openBrowser } from '../test/support/browser';
import { eventually } from '../test/support/emulator';
import { AGENT_USERDATA, configText, testConfig } from '../test/support/fixtures';
import globalSetup from '../test/support/global-setup';
import globalTeardown from '../test/support/global-teardown';
import { LeaderStack, type LeaderWorker } from '../test/support/leader-stack';
import { freePort, REPO_ROOT } from '../test/support/processes';
import { findPrometheus, startPrometheus, type PrometheusServer } from '../test/support/prometheus';
import { expandVariables, legendOf, readDashboard, type Dashboard } from './dashboard/panels';
import { dashboardPage, PAGE_WIDTH, type DashboardData, type PanelData } from './dashboard/render';

const SCRAPE_SECONDS = 5;
const STEP_SECONDS = 10;

interface Args {
  out: string;
  data: string;
  renderOnly: boolean;
  holdSeconds: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = {
    out: path.join(REPO_ROOT, 'docs', 'images', 'grafana-dashboard.png'),
    data: path.join(REPO_ROOT, 'docs', 'images', 'grafana-dashboard-data.json'),
    renderOnly: false,
    holdSeconds: 90,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '--render-only') {
      args.renderOnly = true;
      continue;
    }
    const value = argv[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === '--out') args.out = path.resolve(value);
    else if (flag === '--data') args.data = path.resolve(value);
    else if (flag === '--hold') args.holdSeconds = Number(value);
    else throw new Error(`unknown option ${flag}`);
  }
  if (!Number.isFinite(args.holdSeconds) || args.holdSeconds < 0) throw new Error('--hold must be a number of seconds');
  return args;
}

const log = (line: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every panel's targets asked of Prometheus over the run, as the dashboard would (its variables at "All"). */
async function queryPanels(prometheus: PrometheusServer, dashboard: Dashboard, from: number, to: number): Promise<PanelData[]> {
  const out: PanelData[] = [];
  for (const panel of dashboard.panels) {
    const data: PanelData = { id: panel.id, type: panel.type, title: panel.title, gridPos: panel.gridPos, unit: panel.fieldConfig?.defaults?.unit, series: [], errors: [] };
    for (const target of panel.type === 'row' ? [] : (panel.targets ?? [])) {
      try {
        const series = await prometheus.queryRange(expandVariables(target.expr, dashboard), from, to, STEP_SECONDS);
        for (const s of series) data.series.push({ name: legendOf(target.legendFormat, s.labels), points: s.points });
      } catch (err) {
        data.errors.push(`${target.expr}: ${(err as Error).message}`);
      }
    }
    out.push(data);
  }
  return out;
}

/** The scenario on a live stack, scraped by Prometheus throughout; returns what every panel shows. */
async function collect(args: Args): Promise<DashboardData> {
  const tools = findPrometheus();
  if ('missing' in tools) throw new Error(`no Prometheus: ${tools.missing}`);
  const dashboard = readDashboard();
  // The picture is of the metrics, not of the IAM proof the tests run at the end.
  process.env.NSTANCE_IAM_PROOF = 'off';
  await globalSetup();
  const shard = `dash-${Date.now().toString(36)}`;
  const ref = { shard, tenant: 'default', group: 'web' };
  const scenario: string[] = [];
  const step = (what: string) => {
    scenario.push(what);
    log(what);
  };
  let stack: LeaderStack | undefined;
  let prometheus: PrometheusServer | undefined;
  let fleet: SimulatedFleet | undefined;
  try {
    const shardSettings = { garbage_collection: { interval: '5s', registration_timeout: '20s', deleted_record_retention: '30s' } };
    stack = await LeaderStack.create({ shard, heartbeatTimeout: '3s', shardSettings });
    const s = stack;
    const metricsOf = new Map<LeaderWorker, string>();
    const worker = async (id: string) => {
      const [metricsPort, sdkPort] = [await freePort(), await freePort()];
      const w = await s.startWorker(id, { env: { NSTANCE_METRICS_PORT: String(metricsPort), NSTANCE_METRICS_HOST: '127.0.0.1', NSTANCE_SDK_METRICS_ADDRESS: `127.0.0.1:${sdkPort}` } });
      metricsOf.set(w, `http://127.0.0.1:${metricsPort}/metrics`);
      return w;
    };
    const w1 = await worker('w1');
    await s.waitForLeader(w1, 120_000);
    await worker('w2');
    prometheus = await startPrometheus(tools.prometheus, [...metricsOf.values()], SCRAPE_SECONDS, log);
    const from = Date.now();

    // Agents register with whichever worker leads: its agent API.
    let leader = w1;
    fleet = new SimulatedFleet({ ec2: s.h.aws.ec2, shard, resolveAddress: () => new URL(leader.agentUrl).host, stateRoot: fs.mkdtempSync(path.join(s.logDir, 'fleet-')), pollMs: 500 }).start();
    const agents = fleet;
    const file = path.join(s.logDir, 'config.jsonc');
    const config = testConfig(s.seed, { shard, bucket: s.h.bucket, size: 3, shardSettings }) as { templates: { web: { userdata: { content: string } } } };
    config.templates.web.userdata.content = AGENT_USERDATA;
    fs.writeFileSync(file, configText(config));
    await s.cli(['config', 'apply', '-f', file, '--yes']);
    const serving = (n: number, timeoutMs = 180_000) =>
      eventually(`default/web to serve ${n}`, async () => {
        const st = await groupStatus(s.h.client, ref, { limit: 0 }).catch(() => undefined);
        return st && st.inService === n && st.total === n ? st : undefined;
      }, timeoutMs, 1_000);
    const scale = (n: number) => s.cli(['group', 'scale', 'default/web', String(n), '--bucket', s.h.bucket]);
    step('config applied: default/web of 3, agents registering');
    await serving(3);
    await sleep(30_000);

    s.proxy.injectError('RunInstances', 'InsufficientInstanceCapacity', 2);
    s.proxy.injectError('RunInstances', 'RequestLimitExceeded');
    await scale(5);
    step('scaled to 5 through 2 capacity refusals and a throttle');
    await serving(5);
    await sleep(30_000);

    s.proxy.injectError('RunInstances', 'InvalidParameterValue', 2);
    await scale(6);
    step('scaled to 6: a launch refused outright (failed, replaced)');
    await serving(6);
    const [silent] = agents.registered();
    if (silent) {
      agents.silence(silent);
      step(`agent of ${silent} silenced (unhealthy, replaced)`);
    }
    await s.h.aws.ec2.send(
      new RunInstancesCommand({
        ImageId: s.seed.imageId,
        InstanceType: 'm7g.large',
        SubnetId: s.seed.subnetIds[0],
        MinCount: 1,
        MaxCount: 1,
        TagSpecifications: [
          { ResourceType: 'instance', Tags: [{ Key: TAG.instanceId, Value: 'web-orphandash001' }, { Key: TAG.clusterId, Value: 'test' }, { Key: TAG.shard, Value: shard }, { Key: TAG.managed, Value: 'true' }] },
          { ResourceType: 'volume', Tags: [{ Key: TAG.clusterId, Value: 'test' }, { Key: TAG.shard, Value: shard }, { Key: TAG.managed, Value: 'true' }] },
        ],
      }),
    );
    step('an orphan launched behind the group (the collector terminates it)');
    await sleep(45_000);

    await scale(2);
    step('scaled down to 2');
    await serving(2);
    await sleep(20_000);

    w1.kill('SIGKILL');
    leader = await s.waitForAnyLeader([w1.spec.workerId], 120_000);
    step(`leader w1 killed; ${leader.spec.workerId} took over`);
    await sleep(args.holdSeconds * 1000);
    step(`held ${args.holdSeconds} s`);
    const to = Date.now();

    const down = (await prometheus.targets()).filter((t) => t.health !== 'up' && !t.url.includes(new URL(metricsOf.get(w1) as string).host));
    if (down.length > 0) log(`warning: targets not up: ${down.map((t) => `${t.url} (${t.lastError})`).join(', ')}`);
    const panels = await queryPanels(prometheus, dashboard, from, to);
    return { title: dashboard.title, from, to, stepSeconds: STEP_SECONDS, scenario, panels };
  } finally {
    await fleet?.stop();
    await prometheus?.stop();
    await stack?.close().catch((err: Error) => log(`closing the stack: ${err.message}`));
    await globalTeardown();
  }
}

async function render(data: DashboardData, out: string): Promise<void> {
  const html = dashboardPage(data);
  const browserPath = findChromium();
  if ('missing' in browserPath) throw new Error(`no Chromium: ${browserPath.missing}`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out.replace(/\.png$/, '.html'), html);
  const session = await openBrowser({ executablePath: browserPath.path, artifacts: path.dirname(out), viewport: { width: PAGE_WIDTH + 16, height: 900 } });
  try {
    const page = await session.newPage();
    await page.setContent(html, { waitUntil: 'load' });
    await page.screenshot({ path: out, fullPage: true });
  } finally {
    await session.close();
  }
  fs.rmSync(out.replace(/\.png$/, '.html'));
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  let data: DashboardData;
  if (args.renderOnly) data = JSON.parse(fs.readFileSync(args.data, 'utf8')) as DashboardData;
  else {
    data = await collect(args);
    fs.mkdirSync(path.dirname(args.data), { recursive: true });
    fs.writeFileSync(args.data, `${JSON.stringify(data)}\n`);
    log(`Prometheus's answers written to ${args.data}`);
  }
  const empty = data.panels.filter((p) => p.type !== 'row' && p.series.length === 0).map((p) => p.title);
  if (empty.length > 0) log(`panels with no data: ${empty.join('; ')}`);
  const failed = data.panels.filter((p) => p.errors.length > 0);
  if (failed.length > 0) throw new Error(`Prometheus refused the queries of ${failed.map((p) => `"${p.title}" (${p.errors.join('; ')})`).join(', ')}`);
  await render(data, args.out);
  log(`written ${args.out}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`dashboard-picture: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
