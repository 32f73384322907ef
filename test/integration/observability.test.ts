/**
 * Operating it like a product, checked end to end on one shard run by a real `nstance
 * worker` process (leadership on, metrics on):
 * - a real headless Chromium (Debian's, scripts/chromium.sh) opens the dev server's Web
 *   UI by direct URL, the list and each workflow type's page, and finds the summaries
 *   and details; screenshots are kept in test/artifacts/browser (git-ignored);
 * - the CLI prints Web UI links that open the runs it started or signalled;
 * - a scrape of the worker's /metrics during the scenario matches what EC2 holds, and
 *   carries the Temporal SDK's own metrics; the capacity and throttle refusals the fault
 *   proxy gives a launch are counted, and so are the registration and the missed health
 *   reports of a real (simulated) agent talking to the worker's agent API;
 * - the shard's secrets are in object storage, so `nstance secrets rotate-key` runs, and its
 *   workflow's page is checked too.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DescribeInstancesCommand, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { gcWorkflowId, groupWorkflowId, instanceWorkflowId, leaderWorkflowId, TAG } from '../../common/names';
import { keyRotationWorkflowId } from '../../workflows/key-rotation-api';
import { groupStatus } from '../../client/ops/status';
import { ARTIFACTS_DIR, findChromium, openAndWaitForText, openBrowser, pageTextShowing, shows, type BrowserSession } from '../support/browser';
import { eventually, listKeys, shardInstances, tagOf } from '../support/emulator';
import { configText, testConfig } from '../support/fixtures';
import { STACK_UI_VAR } from '../support/global-setup';
import { LeaderStack, type LeaderWorker } from '../support/leader-stack';
import { freePort } from '../support/processes';
import { Registrar } from '../support/registrar';
import { signalsIn } from '../support/history';
import { SimulatedFleet } from '../../client/agent/fleet';
import type { HealthTransition } from '../../workflows/definitions';
import { sample, scrapeMetrics } from '../support/metrics-scrape';
import { testSecretsKey } from '../support/secret-ledger';

jest.setTimeout(240_000);

const shard = `obs-${Date.now().toString(36)}`;
const ref = { shard, tenant: 'default', group: 'web' };
const ui = process.env[STACK_UI_VAR] ?? '';
let stack: LeaderStack;
let w1: LeaderWorker;
let epoch = 0;
let metricsUrl = '';
let registrar: Registrar | undefined;
let applyOutput = '';

const scrape = () => scrapeMetrics(metricsUrl);

/** Every instance EC2 has ever held for the group (terminated ones too), by state. */
async function groupInstancesInEc2(): Promise<{ all: number; running: number; terminated: number }> {
  const out = await stack.h.aws.ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: `tag:${TAG.shard}`, Values: [shard] }, { Name: `tag:${TAG.group}`, Values: ['default/web'] }] }));
  const instances = (out.Reservations ?? []).flatMap((r) => r.Instances ?? []).filter((i) => tagOf(i, TAG.managed) === 'true');
  const state = (name: string) => instances.filter((i) => i.State?.Name === name).length;
  return { all: instances.length, running: state('running'), terminated: state('terminated') + state('shutting-down') };
}

// The collector every 2 s, with a 10 s grace, keeping records of ended instances 1 s: its actions are seen here.
// In the first config too: the worker caches it, and the collector's first pass may read that one.
const shardSettings = { garbage_collection: { interval: '2s', registration_timeout: '10s', deleted_record_retention: '1s' } };
// Object-storage secrets (the cluster PKI among them) under a key from the environment, which the worker inherits.
const KEY_VAR = `NSTANCE_TEST_OBS_KEY_${shard.slice(4).toUpperCase()}`;
const secrets = { provider: 'object-storage', encryption_key: { provider: 'env', source: KEY_VAR } };
// Userdata an agent boots from: the CA, the registration address and a nonce (valid for registration_timeout).
const AGENT_USERDATA =
  "#!/bin/bash\nmkdir -p /etc/nstance && cat > /etc/nstance/ca.crt <<'CA'\n{{ .Server.CACert }}\nCA\n/opt/nstance/agent --register {{ .Server.RegistrationAddr }} --nonce {{ .Nonce }}\n";

beforeAll(async () => {
  testSecretsKey(KEY_VAR);
  stack = await LeaderStack.create({ shard, heartbeatTimeout: '3s', shardSettings, secrets });
  const metricsPort = await freePort();
  const sdkPort = await freePort();
  metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
  w1 = await stack.startWorker('w1', { env: { NSTANCE_METRICS_PORT: String(metricsPort), NSTANCE_METRICS_HOST: '127.0.0.1', NSTANCE_SDK_METRICS_ADDRESS: `127.0.0.1:${sdkPort}` } });
  ({ epoch } = await stack.waitForLeader(w1, 90_000));
  const file = path.join(stack.logDir, 'config.jsonc');
  const config = testConfig(stack.seed, { shard, bucket: stack.h.bucket, size: 2, shardSettings, secrets }) as { templates: { web: { userdata: { content: string } } } };
  config.templates.web.userdata.content = AGENT_USERDATA;
  fs.writeFileSync(file, configText(config));
  applyOutput = await stack.cli(['config', 'apply', '-f', file, '--ui-url', ui]);
  registrar = new Registrar(stack.h.client, ref).start();
  await eventually('default/web to serve 2', async () => {
    const s = await groupStatus(stack.h.client, ref, { limit: 0 }).catch(() => undefined);
    return s && s.inService === 2 && s.pending === 0 && s.draining === 0 ? s : undefined;
  }, 120_000);
});

afterAll(async () => {
  await registrar?.stop();
  if (process.env.NSTANCE_LEADER_TEST_LOGS) console.log(w1?.log());
  await stack?.close();
  delete process.env[KEY_VAR];
});

describe('metrics', () => {
  test("a scrape of the worker's /metrics matches EC2, and carries the SDK's runtime metrics", async () => {
    const ec2 = await groupInstancesInEc2();
    expect(ec2.running).toBe(2);
    const labels = { shard, tenant: 'default', group: 'web' };
    const text = await eventually('the group gauges to show 2 in service', async () => {
      const t = await scrape();
      return sample(t, 'nstance_group_in_service', labels) === 2 ? t : undefined;
    }, 30_000, 1_000);
    expect(sample(text, 'nstance_group_desired', labels)).toBe(2);
    expect(sample(text, 'nstance_group_running', labels)).toBe(ec2.running);
    expect(sample(text, 'nstance_group_pending', labels)).toBe(0);
    expect(sample(text, 'nstance_group_draining', labels)).toBe(0);
    expect(sample(text, 'nstance_group_unhealthy', labels)).toBe(0);
    // Every instance EC2 ever held for the group was launched once, and counted once.
    expect(sample(text, 'nstance_instance_launches_total', { tenant: 'default', group: 'web', adopted: 'false' })).toBe(ec2.all);
    expect(sample(text, 'nstance_leader', {})).toBe(1);
    expect(sample(text, 'nstance_leader_epoch', {})).toBe(epoch);
    expect(sample(text, 'nstance_leader_handoffs_total', { reason: 'initial' })).toBe(1);
    expect(sample(text, 'nstance_leader_handoff_duration_seconds_count', { reason: 'initial' })).toBe(1);
    // Temporal Core's own metrics, from its loopback exporter, in the same scrape.
    expect(sample(text, 'nstance_sdk_metrics_up', {})).toBe(1);
    expect(text).toMatch(/^temporal_\w+/m);
    expect(text).toMatch(/^temporal_workflow_completed_total|^temporal_worker_start_total|^temporal_request_total/m);

    // Scale down through the CLI: EC2 terminates one, and the counters and gauges follow.
    const scaled = await stack.cli(['group', 'scale', 'default/web', '1', '--bucket', stack.h.bucket, '--ui-url', ui]);
    expect(scaled).toContain(`Web UI: ${ui}/namespaces/default/workflows/${encodeURIComponent(groupWorkflowId(shard, 'default', 'web'))}/`);
    await eventually('EC2 to hold one running instance of the group', async () => ((await groupInstancesInEc2()).running === 1 && (await shardInstances(stack.h.aws.ec2, shard)).length === 1 ? true : undefined), 90_000);
    const after = await groupInstancesInEc2();
    const later = await eventually('the gauges to show 1 running and the termination counted', async () => {
      const t = await scrape();
      return sample(t, 'nstance_group_running', labels) === 1 && sample(t, 'nstance_instance_terminations_total', { tenant: 'default', group: 'web', reason: 'scale-down' }) === 1 ? t : undefined;
    }, 45_000, 1_000);
    expect(sample(later, 'nstance_group_desired', labels)).toBe(1);
    expect(after.terminated).toBe(1);
  });

  test('the garbage collector counts each kind of action it takes: an orphan terminated, an ended instance\'s record deleted', async () => {
    // The scaled-down instance's record: deleted once past the retention, and counted.
    const records = () => listKeys(stack.h.aws.s3, stack.h.bucket, `shard/${shard}/instance/`);
    const member = await eventually('the scaled-down member forgotten', async () => {
      const s = await groupStatus(stack.h.client, ref);
      return s.total === 1 ? s.members[0] : undefined;
    }, 30_000);
    const kept = `shard/${shard}/instance/default.${member.instanceId}.json`;
    let seen: string[] = [];
    await eventually('only the remaining member keeps a record', async () => {
      seen = await records();
      return seen.length === 1 && seen[0] === kept ? seen : undefined;
    }, 60_000).catch((err: Error) => {
      throw new Error(`${err.message} (records: ${seen.join(', ') || 'none'}; kept: ${kept})`);
    });
    // An instance tagged for the shard that no workflow owns, as a crashed launcher leaves one.
    const run = await stack.h.aws.ec2.send(
      new RunInstancesCommand({
        ImageId: stack.seed.imageId,
        InstanceType: 'm7g.large',
        SubnetId: stack.seed.subnetIds[0],
        MinCount: 1,
        MaxCount: 1,
        TagSpecifications: [
          {
            ResourceType: 'instance',
            Tags: [
              { Key: TAG.instanceId, Value: 'web-orphanobs0001' },
              { Key: TAG.clusterId, Value: 'test' },
              { Key: TAG.shard, Value: shard },
              { Key: TAG.managed, Value: 'true' },
            ],
          },
        ],
      }),
    );
    const orphan = run.Instances?.[0]?.InstanceId as string;
    await eventually('EC2 to show the orphan terminated', async () => ((await shardInstances(stack.h.aws.ec2, shard, ['shutting-down', 'terminated'])).some((i) => i.InstanceId === orphan) ? true : undefined), 60_000);
    const text = await eventually('the scrape to count the orphan terminated', async () => {
      const t = await scrape();
      return sample(t, 'nstance_gc_actions_total', { action: 'orphan-terminated' }) === 1 ? t : undefined;
    }, 30_000, 1_000);
    expect(sample(text, 'nstance_gc_terminations_total')).toBe(1);
    // One record of an ended instance existed (the scaled-down one), and it was deleted: at least once, as
    // a pass that deleted it may have been retried.
    expect(sample(text, 'nstance_gc_actions_total', { action: 'record-deleted' })).toBeGreaterThanOrEqual(1);
    for (const action of ['duplicate-terminated', 'untagged-terminated', 'termination-refused']) expect(sample(text, 'nstance_gc_actions_total', { action }) ?? 0).toBe(0);
  });
});

describe('Web UI', () => {
  let session: BrowserSession | undefined;
  const chromium = findChromium();

  beforeAll(async () => {
    if ('path' in chromium && process.env.NSTANCE_TEST_BROWSER !== 'off') session = await openBrowser({ executablePath: chromium.path, artifacts: 'browser' });
  });
  afterAll(async () => {
    await session?.close();
  });

  // No browser is a failure, not a pass: only NSTANCE_TEST_BROWSER=off skips it, by name.
  const skipBrowser = process.env.NSTANCE_TEST_BROWSER === 'off';
  const browserTest = skipBrowser ? test.skip : test;
  if (skipBrowser) console.warn('Web UI browser test skipped: NSTANCE_TEST_BROWSER=off');

  browserTest('the list and every workflow type\'s page show their summaries and details', async () => {
    if (!('path' in chromium)) throw new Error(`no Chromium could be installed (${chromium.missing}); scripts/chromium.sh installs Debian's. NSTANCE_TEST_BROWSER=off skips this test`);
    const s = session as BrowserSession;
    expect(ui).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const client = stack.h.client;
    const runOf = async (workflowId: string) => (await client.workflow.getHandle(workflowId).describe()).runId;
    const page = await s.newPage();

    // The list, filtered to this shard, by direct URL. (The UI's list has no summary column, 2.54 included: the
    // summaries are checked on each run's page below.)
    const list = `${ui}/namespaces/default/workflows?query=${encodeURIComponent(`NstanceShard = "${shard}"`)}`;
    await openAndWaitForText(page, list, groupWorkflowId(shard, 'default', 'web'), 60_000);
    for (const type of ['groupWorkflow', 'instanceWorkflow', 'leaderWorkflow', 'gcWorkflow']) await page.getByText(type, { exact: true }).first().waitFor({ timeout: 15_000 });
    await s.screenshot(page, 'workflows-list');

    // Each run's page, by direct URL: the header, its input (stored encrypted, decoded by the UI through the
    // codec server: every workflow's input names its shard), the User Metadata tab (static summary and details,
    // current details of a running run) and the event history (activity summaries). What is missing is
    // collected, and every page's text is kept next to its screenshots, so one run shows all that is wrong.
    const missing: string[] = [];
    type Expected = { metadata: (string | RegExp)[]; history: (string | RegExp)[] };
    const decodedInput = `"shard": "${shard}"`;
    const check = async (name: string, url: string, expected: Expected) => {
      await openAndWaitForText(page, url, 'User Metadata');
      const history = await pageTextShowing(page, [decodedInput, ...expected.history], 30_000);
      // What the page opens on (its header and decoded input), as docs/images/decoded-history.png shows it.
      await s.screenshot(page, `${name}-decoded`, { fullPage: false });
      if (!shows(history, decodedInput)) missing.push(`${name}: the input decoded (${decodedInput})`);
      await s.screenshot(page, `${name}-history`);
      await page.getByText('User Metadata', { exact: true }).first().click();
      await page.getByTestId('user-metadata').first().waitFor({ timeout: 10_000 });
      const metadata = await pageTextShowing(page, expected.metadata, 15_000);
      await s.screenshot(page, `${name}-user-metadata`);
      fs.writeFileSync(path.join(ARTIFACTS_DIR, 'browser', `${name}.txt`), `${metadata}\n----- history -----\n${history}`);
      for (const t of [...expected.metadata, ...expected.history]) if (!shows(metadata + history, t)) missing.push(`${name}: ${String(t)}`);
    };
    const pageOf = async (workflowId: string) => `${ui}/namespaces/default/workflows/${encodeURIComponent(workflowId)}/${await runOf(workflowId)}/history`;

    // The group's first run, from the link `config apply` printed: its static summary and details.
    const groupLink = /Web UI: (\S+)/.exec(applyOutput.split('\n').find((l) => l.includes(encodeURIComponent(groupWorkflowId(shard, 'default', 'web')))) ?? '')?.[1];
    expect(groupLink).toBeDefined();
    await check('group-first-run', groupLink as string, {
      metadata: ['group default/web · size 2 · template web', /shard:?\s*obs-/],
      history: [/load the spec of default\/web/, /describe \d+ instances? \(i-\w+/],
    });
    // Its current run: current details.
    await check('group', await pageOf(groupWorkflowId(shard, 'default', 'web')), { metadata: [/desired 1 · running 1/], history: [] });

    // An instance: its group, kind, template and type, and its EC2 instance in its current details. Its group's start
    // batch launched and audited it (that activity's summary names the group, type and instances), and without
    // target groups it runs no activity of its own until it leaves.
    const member = (await groupStatus(client, ref)).members.find((m) => m.phase === 'in-service');
    expect(member).toBeDefined();
    const instanceId = member?.instanceId as string;
    await check('instance', await pageOf(instanceWorkflowId(shard, instanceId)), {
      metadata: [`instance ${instanceId} of default/web · kind web · template web · m7g.large`, /in-service/, new RegExp(`EC2 instance:?\\s*${member?.ec2InstanceId}`)],
      history: [],
    });
    // The leader (its ENI move names the ENI, the instance and the epoch) and the garbage collector.
    await check('leader', await pageOf(leaderWorkflowId(shard)), {
      metadata: [`leader of shard ${shard}`, /epoch:?\s*1/],
      history: [new RegExp(`attach eni-\\w+ to ${w1.ec2InstanceId} \\(worker w1\\) at epoch ${epoch}`)],
    });
    // The collector passes every 2 s here, so its current run has usually continued as new (no static summary
    // there): its first run, from the link `config apply` printed, has the summary; the current run its details.
    const gcLink = /Web UI: (\S+)/.exec(applyOutput.split('\n').find((l) => l.includes(encodeURIComponent(gcWorkflowId(shard)))) ?? '')?.[1];
    expect(gcLink).toBeDefined();
    await check('gc-first-run', gcLink as string, { metadata: [`garbage collector of shard ${shard}`], history: [] });
    await check('gc', await pageOf(gcWorkflowId(shard)), { metadata: [/next pass/], history: [] });

    // The key rotation, from the link `nstance secrets rotate-key` printed (it waits for the run, which finds the
    // cluster PKI's secrets already under the one key): its static summary and details, and its activities'
    // summaries. (It has ended when the page opens: current details are checked on the running group above.)
    const rotated = await stack.cli(['secrets', 'rotate-key', '--ui-url', ui]);
    expect(rotated).toMatch(/key rotation done: every secret checked in 1 pass/);
    const rotationLink = /Web UI: (\S+)/.exec(rotated)?.[1];
    expect(rotationLink).toContain(`/workflows/${encodeURIComponent(keyRotationWorkflowId(shard))}/`);
    await check('key-rotation', rotationLink as string, {
      metadata: [`nstance secrets rotate-key (shard ${shard}, by test)`, /does:?\s*re-encrypts every object-storage secret/, /page size:?\s*100 secrets per activity/],
      history: [new RegExp(`count shard ${shard}'s object-storage secrets`), /re-encrypt up to 100 secrets under key \S+, from the first/],
    });
    expect(missing).toEqual([]);
  });
});

describe('metrics of refused AWS requests', () => {
  // A launch refused for capacity, then throttled, by the fault proxy in front of EC2 (the worker's activity
  // clients make one SDK attempt, so each refusal reaches the middleware that counts it), then let through.
  test('the capacity and throttle refusals EC2 gave a launch are counted by kind and code, and the group still grows', async () => {
    const counted = (t: string, kind: string, code: string) => sample(t, 'nstance_aws_errors_total', { operation: 'RunInstances', kind, code }) ?? 0;
    const given = () => stack.proxy.census.snapshot().actions['ec2:RunInstances']?.outcomes ?? {};
    const before = { text: await scrape(), given: given() };
    const size = (await groupStatus(stack.h.client, ref, { limit: 0 })).desired + 1;
    stack.proxy.injectError('RunInstances', 'InsufficientInstanceCapacity');
    stack.proxy.injectError('RunInstances', 'RequestLimitExceeded');
    await stack.cli(['group', 'scale', 'default/web', String(size), '--bucket', stack.h.bucket]);
    await eventually(`EC2 to run ${size} of the group`, async () => ((await groupInstancesInEc2()).running === size ? true : undefined), 90_000);
    const after = given();
    const refused = (code: string) => (after[code] ?? 0) - (before.given[code] ?? 0);
    expect([refused('InsufficientInstanceCapacity'), refused('throttled')]).toEqual([1, 1]);
    let last = '';
    const text = await eventually('the scrape to count both refusals', async () => {
      const t = (last = await scrape());
      return counted(t, 'capacity', 'InsufficientInstanceCapacity') > counted(before.text, 'capacity', 'InsufficientInstanceCapacity') && counted(t, 'throttle', 'RequestLimitExceeded') > counted(before.text, 'throttle', 'RequestLimitExceeded') ? t : undefined;
    }, 30_000, 1_000).catch((err: Error) => {
      throw new Error(`${err.message}; nstance_aws_errors_total now: ${last.split('\n').filter((l) => l.startsWith('nstance_aws_errors_total')).join('; ') || 'none'}`);
    });
    // Exactly what EC2 refused: one of each.
    expect(counted(text, 'capacity', 'InsufficientInstanceCapacity') - counted(before.text, 'capacity', 'InsufficientInstanceCapacity')).toBe(refused('InsufficientInstanceCapacity'));
    expect(counted(text, 'throttle', 'RequestLimitExceeded') - counted(before.text, 'throttle', 'RequestLimitExceeded')).toBe(refused('throttled'));
    const labels = { shard, tenant: 'default', group: 'web' };
    await eventually(`the gauges to show ${size} running`, async () => (sample(await scrape(), 'nstance_group_running', labels) === size ? true : undefined), 30_000, 1_000);
  });
});

describe("a real agent on the worker's agent API", () => {
  let fleet: SimulatedFleet | undefined;
  afterAll(async () => fleet?.stop());

  test("the scrape counts a new member's agent registering, then the missed health reports that make it unhealthy", async () => {
    const counts = (t: string) => ({
      registered: sample(t, 'nstance_agent_registrations_total', { tenant: 'default', group: 'web', kind: 'new' }) ?? 0,
      missed: sample(t, 'nstance_agent_missed_health_reports_total') ?? 0,
    });
    // The Registrar signalled the members so far (no agent asked), and their nonces, valid for registration_timeout
    // (10 s here), have expired: only a new member's agent can register.
    expect(counts(await scrape())).toEqual({ registered: 0, missed: 0 });
    const agentApi = new URL(w1.agentUrl).host;
    const agents = new SimulatedFleet({ ec2: stack.h.aws.ec2, shard, resolveAddress: () => agentApi, stateRoot: fs.mkdtempSync(path.join(stack.logDir, 'fleet-')), pollMs: 300 }).start();
    fleet = agents;
    const size = (await groupStatus(stack.h.client, ref, { limit: 0 })).desired + 1;
    await stack.cli(['group', 'scale', 'default/web', String(size), '--bucket', stack.h.bucket]);
    const [agent] = await eventually("the new member's agent registered", async () => (agents.registered().length > 0 ? agents.registered() : undefined), 60_000, 250);
    const registered = await eventually('the scrape to count it', async () => {
      const c = counts(await scrape());
      return c.registered > 0 ? c : undefined;
    }, 20_000, 1_000);
    expect(registered.registered).toBe(agents.registered().length);

    // Silenced, it is unhealthy after 3 missed intervals of 3 s: its workflow is told once, and the scrape counts it.
    agents.silence(agent as string);
    const unhealthy = async () =>
      (await signalsIn<HealthTransition>(stack.h.client, instanceWorkflowId(shard, agent as string), 'instanceHealth')).filter((x) => x.arg.status === 'unhealthy' && /missed intervals/.test(x.arg.reason)).length;
    await eventually('its workflow told it is unhealthy', async () => ((await unhealthy()) > 0 ? true : undefined), 45_000);
    const missed = await eventually('the scrape to count the missed reports', async () => {
      const c = counts(await scrape());
      return c.missed > 0 ? c : undefined;
    }, 20_000, 1_000);
    expect(missed.missed).toBe(await unhealthy());
  });
});
