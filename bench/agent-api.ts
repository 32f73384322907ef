/**
 * Agent API benchmark: N agents registering at once, then a fleet reporting health on its
 * interval, against one agent API (`npm run bench -- agent-api`, i.e. node dist/bench/agent-api.js).
 *
 * It starts its own Temporal dev server and moto (the integration tests' global setup). The
 * agent API runs in this process exactly as a shard worker wires it (agentServices: the nonce
 * issuer and the API share one config cache and one PKI cache), attached to a worker that runs
 * a bench-only stand-in for the instance workflow (bench/agent-api/standin-workflow.ts) under
 * the instance workflow ids, since registration checks that the instance's workflow runs and
 * signals it. Nonces are minted by that issuer, with the cluster's registration key, as the
 * launch activity does. The agents are real `Agent`s in their own process
 * (bench/agent-api/driver.ts), so what is measured is the API. A fault layer on this process's
 * S3 and Secrets Manager clients counts every call.
 *
 * Env: BENCH_AGENTS (default 5000: the fleet reporting health), BENCH_REGISTER (default 2000:
 * how many register at once first), BENCH_HEALTH_SECONDS (default 120: how long health is
 * measured, after every agent registered), BENCH_HEALTH_INTERVAL (default 60s), BENCH_REGISTER_IN_FLIGHT
 * (the API's registrations in flight; default: the API's own default), BENCH_REGISTER_TIMEOUT (default
 * 600 s: the registration phase reports what registered by then), BENCH_REST (how the rest of the
 * fleet, past BENCH_REGISTER, gets its certificates: "issue" (default) has the benchmark sign them
 * with the cluster CA as registration would, to keep the run short; "register" registers them
 * through the API too), BENCH_FILES ("on": every instance also gets rendered files and two certificate
 * files, one with an agent-made key; results then go to bench/results/agent-api-files.json).
 * Registration results are written as soon as that phase ends, the health results after theirs.
 * Results: printed, and written to bench/results/agent-api.json.
 */
import { fork, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { createAwsClients, destroyAwsClients } from '../adapters/aws/clients';
import { issueClientCertificate } from '../adapters/pki/client-cert';
import { parseDuration } from '../common/duration';
import { s3Keys } from '../common/names';
import globalSetup from '../test/support/global-setup';
import globalTeardown from '../test/support/global-teardown';
import { FaultLayer } from '../test/support/faults';
import { REPO_ROOT } from '../test/support/processes';
import { stackEnv } from '../test/support/stack-env';
import type { DriverMessage, DriverReply } from './agent-api/protocol';
import { startStand, type Stand } from './agent-api/stand';
import { agentUri } from '../workers/agent-api/register';
import { runBenchmark } from './run';
import { nstanceDataConverter } from '../adapters/temporal/data-converter';

type Stats = Extract<DriverReply, { type: 'stats' }>;
type Registered = Extract<DriverReply, { type: 'registered' }>;

class Driver {
  private readonly child: ChildProcess;
  private readonly waiters: ((m: DriverReply) => boolean)[] = [];
  private nextId = 1;

  constructor() {
    this.child = fork(path.join(__dirname, 'agent-api', 'driver.js'), [], { stdio: 'inherit', env: { ...process.env, NODE_OPTIONS: '--max-old-space-size=4096' } });
    this.child.on('message', (m: DriverReply) => {
      const at = this.waiters.findIndex((w) => w(m));
      if (at >= 0) this.waiters.splice(at, 1);
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  send(message: DriverMessage): void {
    this.child.send(message);
  }

  next<T extends DriverReply>(match: (m: DriverReply) => m is T): Promise<T> {
    return new Promise((resolve) => this.waiters.push((m) => (match(m) ? (resolve(m), true) : false)));
  }

  async stats(reset = false): Promise<Stats> {
    const id = this.nextId++;
    const answer = this.next((m): m is Stats => m.type === 'stats' && m.id === id);
    this.send({ type: 'stats', id, reset });
    return answer;
  }

  stop(): void {
    if (this.child.connected) this.send({ type: 'stop' });
    setTimeout(() => this.child.kill('SIGKILL'), 2000).unref();
  }
}

function rssSampler(): { maxBytes: () => number; stop: () => void } {
  let max = process.memoryUsage().rss;
  const timer = setInterval(() => (max = Math.max(max, process.memoryUsage().rss)), 500);
  timer.unref();
  return { maxBytes: () => max, stop: () => clearInterval(timer) };
}

const mb = (bytes: number) => Math.round(bytes / 1024 / 1024);
const seconds = (ms: number) => Math.round(ms / 100) / 10;

const BENCH_TEMPLATE_FILES = {
  files: {
    '/etc/app/app.env': { kind: 'env', template: { INSTANCE: '{{ .Instance.ID }}', ENVIRONMENT: '{{ .Vars.Environment }}' } },
    '/etc/app/app.json': { kind: 'json', template: { group: '{{ .Tenant }}/{{ .Group }}', instance: '{{ .Instance.ID }}' } },
    '/etc/app/hello': { kind: 'string', template: 'hello from {{ .Instance.ID }}\n' },
    '/etc/app/tls': { kind: 'certificate', template: 'server' },
    '/etc/app/client': { kind: 'certificate', template: 'client', key: { source: 'agent' } },
  },
  certificates: {
    server: { kind: 'server', cn: '{{ .Instance.ID }}', dns: ['{{ .Instance.ID }}.internal'], ttl: 24 },
    client: { kind: 'client', cn: '{{ .Instance.ID }}', ttl: 24 },
  },
};

async function main(): Promise<void> {
  const total = Number(process.env.BENCH_AGENTS ?? 5000);
  const burst = Math.min(total, Number(process.env.BENCH_REGISTER ?? 2000));
  const healthSeconds = Number(process.env.BENCH_HEALTH_SECONDS ?? 120);
  const healthInterval = process.env.BENCH_HEALTH_INTERVAL ?? '60s';
  // BENCH_FILES=on: the template gives every instance rendered files and two certificate files (a server-made key, an agent-made one).
  const templateFiles = process.env.BENCH_FILES === 'on' ? BENCH_TEMPLATE_FILES : undefined;
  await globalSetup();
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const env = stackEnv();
  const aws = createAwsClients({ region: env.region, endpoint: env.awsEndpoint });
  const faults = new FaultLayer().attach(aws.s3, aws.secrets);
  const bucket = 'nstance-bench-agent-api';
  await aws.s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const connection = await Connection.connect({ address: env.temporalAddress });
  const client = new Client({ connection, dataConverter: nstanceDataConverter() });
  const shard = `bench-${Date.now().toString(36)}`;
  const rss = rssSampler();
  let stand: Stand | undefined;
  let driver: Driver | undefined;
  try {
    const inFlight = process.env.BENCH_REGISTER_IN_FLIGHT ? { registrationConcurrency: { maxInFlight: Number(process.env.BENCH_REGISTER_IN_FLIGHT) } } : {};
    const loadBefore = os.loadavg();
    stand = await startStand({ client, temporalAddress: env.temporalAddress, aws, bucket, shard, healthInterval, api: inFlight, templateFiles, log: (line) => console.log(line) });
    const idleRssBytes = process.memoryUsage().rss;
    const ids = Array.from({ length: total }, (_, i) => `web-${String(i).padStart(12, '0')}`);
    let t = Date.now();
    await stand.startInstances(ids, 64);
    const standInsMs = Date.now() - t;
    console.log(`${total} stand-in instance workflows started in ${seconds(standInsMs)} s`);
    t = Date.now();
    const materials = await Promise.all(ids.map((id) => stand!.mintNonce(id)));
    const mintMs = Date.now() - t;
    const agents = ids.map((instanceId, i) => ({ instanceId, nonce: materials[i]!.nonce }));

    driver = new Driver();
    await driver.next((m): m is Extract<DriverReply, { type: 'ready' }> => m.type === 'ready');
    const stateRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'nstance-bench-agents-'));
    driver.send({ type: 'init', address: stand.address, caPem: materials[0]!.caCertificate, stateRoot, healthIntervalMs: parseDuration(healthInterval) });

    const writes = () => {
      const under = (part: string) => faults.callsOf('PutObject').filter((c) => String(c.input.Key).startsWith(`shard/${shard}/${part}`)).length;
      return { nonce: under('nonce/'), certlog: under('certlog/default.'), audit: under('audit/'), all: faults.callsOf('PutObject').length };
    };
    const registerTimeoutMs = Number(process.env.BENCH_REGISTER_TIMEOUT ?? 600) * 1000;
    const register = async (batch: string, list: typeof agents): Promise<Registered & { timedOut?: boolean }> => {
      const done = driver!.next((m): m is Registered => m.type === 'registered' && m.batch === batch);
      driver!.send({ type: 'start', batch, agents: list });
      const timeout = new Promise<undefined>((r) => setTimeout(() => r(undefined), registerTimeoutMs).unref());
      const finished = await Promise.race([done, timeout]);
      if (finished) return finished;
      const stats = await driver!.stats();
      return { type: 'registered', batch, registeredMs: [registerTimeoutMs], failed: 0, timedOut: true, registeredBy: stats.registered } as Registered & { timedOut: boolean; registeredBy: number };
    };
    const out = path.join(REPO_ROOT, 'bench', 'results', templateFiles ? 'agent-api-files.json' : 'agent-api.json');
    const save = (result: unknown) => {
      fs.mkdirSync(path.dirname(out), { recursive: true });
      fs.writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    };

    // 1. `burst` agents register at once (a scale-up whose instances all boot together).
    const before = writes();
    await driver.stats(true);
    const first = await register('burst', agents.slice(0, burst));
    const burstStats = await driver.stats(true);
    const after = writes();
    const allInMs = first.registeredMs[first.registeredMs.length - 1] ?? 0;
    console.log(`${burst} agents registered in ${seconds(allInMs)} s (${first.failed} failed)`);

    const registeredCount = Math.max(1, first.timedOut ? ((first as { registeredBy?: number }).registeredBy ?? 1) : first.registeredMs.length);
    const registration = {
      agents: burst,
      ...(first.timedOut ? { timedOutAfterMs: registerTimeoutMs, registeredByThen: (first as { registeredBy?: number }).registeredBy } : {}),
      allRegisteredMs: Math.round(allInMs),
      medianRegisteredMs: Math.round(first.registeredMs[Math.floor(first.registeredMs.length / 2)] ?? 0),
      perSecond: Math.round((burst / (allInMs / 1000)) * 10) / 10,
      failed: first.failed,
      /** Answers the agents saw to POST /v1/register (503: busy, shed by the concurrency bound, then retried; 0: no answer in 15 s). */
      registerStatuses: burstStats.paths['POST /v1/register']?.statuses,
      requestLatencyMs: burstStats.paths['POST /v1/register'] && { p50: burstStats.paths['POST /v1/register'].p50, p99: burstStats.paths['POST /v1/register'].p99, max: burstStats.paths['POST /v1/register'].max },
      // Per agent registered in the phase (a repeat after a lost answer rewrites the certificate log create-only: a no-op PUT).
      s3PutsPerRegistration: {
        nonce: (after.nonce - before.nonce) / registeredCount,
        certlog: (after.certlog - before.certlog) / registeredCount,
        audit: (after.audit - before.audit) / registeredCount,
        total: (after.all - before.all) / registeredCount,
      },
      configGetsSoFar: faults.callsOf('GetObject').filter((c) => c.input.Key === s3Keys.config(shard)).length,
      apiProcessMaxRssMb: mb(rss.maxBytes()),
    };
    save({ partial: 'registration only (the health phase had not ended)', at: new Date().toISOString(), machine: { cpus: os.cpus().length, loadAverageAtStart: loadBefore }, registration });

    // 2. The rest of the fleet joins (not the headline: it brings the fleet to `total`).
    const restStarted = Date.now();
    let rest: { agents: number; how: string; readyMs: number; failed?: number } | undefined;
    if (total > burst && process.env.BENCH_REST === 'register') {
      const done = await register('rest', agents.slice(burst));
      rest = { agents: total - burst, how: 'registered through the API', readyMs: Date.now() - restStarted, failed: done.failed };
    } else if (total > burst) {
      // Signed here with the cluster CA, as registration would sign them: these agents only make up the fleet that reports.
      const { view, pki } = await stand.api.context.pki();
      const adopted = agents.slice(burst).map(({ instanceId }) => {
        const key = generateKeyPairSync('ed25519');
        const cert = issueClientCertificate({ caCertPem: pki.caCertPem, caKey: pki.caKey, publicKey: key.publicKey, commonName: instanceId, organization: view.clusterId, organizationalUnit: shard, uris: [agentUri({ cluster: view.clusterId, shard, tenant: 'default', group: 'web', instanceId })], validityDays: 1 });
        return { instanceId, keyPem: key.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, certPem: cert.pem, serialNumber: cert.serialNumber };
      });
      const done = driver.next((m): m is Extract<DriverReply, { type: 'adopted' }> => m.type === 'adopted');
      driver.send({ type: 'adopt', agents: adopted });
      await done;
      rest = { agents: total - burst, how: 'certificates signed by the benchmark with the cluster CA', readyMs: Date.now() - restStarted };
    }
    if (rest) console.log(`${rest.agents} more agents (${rest.how}) in ${seconds(rest.readyMs)} s`);

    // With template files: every agent's certificate files issued (each logged) before health is measured, so the figure is the steady state's.
    let filesIssuedMs: number | undefined;
    if (templateFiles) {
      const certificateFiles = Object.values(templateFiles.files).filter((f) => f.kind === 'certificate').length;
      const expected = burst + total * certificateFiles;
      const since = Date.now();
      while (writes().certlog < expected && Date.now() - since < 900_000) await new Promise((r) => setTimeout(r, 1000));
      filesIssuedMs = Date.now() - since;
      console.log(`${writes().certlog - burst} of ${total * certificateFiles} certificate files issued ${seconds(filesIssuedMs)} s after the fleet was up`);
    }

    // 3. The whole fleet reports health on its interval; measured after one interval, once reports have spread.
    const settle = Math.min(parseDuration(healthInterval), 60_000);
    console.log(`letting reports spread for ${seconds(settle)} s, then measuring health for ${healthSeconds} s`);
    await new Promise((r) => setTimeout(r, settle));
    await driver.stats(true);
    const measuredFrom = Date.now();
    await new Promise((r) => setTimeout(r, healthSeconds * 1000));
    const healthStats = await driver.stats(true);
    const health = healthStats.paths['POST /v1/health'];

    const configGets = faults.callsOf('GetObject').filter((c) => c.input.Key === s3Keys.config(shard));
    const summary = {
      measured: 'one agent API (agentServices, as a shard worker wires it) against moto and a Temporal dev server; real Agent instances in a separate process',
      at: new Date().toISOString(),
      // The load average (1, 5, 15 min) when it started and ended: moto, the dev server and anything else on the box share its cores.
      machine: { cpus: os.cpus().length, node: process.version, platform: `${os.platform()} ${os.arch()}`, loadAverageAtStart: loadBefore.map((n) => Math.round(n * 10) / 10), loadAverageAtEnd: os.loadavg().map((n) => Math.round(n * 10) / 10) },
      config: { agents: total, registerAtOnce: burst, healthInterval, healthMeasuredSeconds: healthSeconds, concurrency: { other: { maxInFlight: stand.api.concurrency.maxInFlight, maxQueued: stand.api.concurrency.maxQueued }, registrations: { maxInFlight: stand.api.registrations.maxInFlight, maxQueued: stand.api.registrations.maxQueued } } },
      setup: { standInWorkflowsStartedMs: standInsMs, noncesMintedMs: mintMs },
      registration: { ...registration, restOfFleet: rest },
      health: {
        agents: total,
        measuredMs: Date.now() - measuredFrom,
        reports: health?.answered ?? 0,
        reportsPerSecond: Math.round(((health?.answered ?? 0) / healthSeconds) * 10) / 10,
        statuses: health?.statuses,
        latencyMs: health && { p50: health.p50, p90: health.p90, p99: health.p99, max: health.max },
        driverEventLoopDelayMs: healthStats.eventLoopDelayMs,
        ...(templateFiles
          ? {
              templateFiles: Object.keys(templateFiles.files),
              filesFetchesWhileMeasured: healthStats.paths['GET /v1/files'] && { answered: healthStats.paths['GET /v1/files'].answered, p50: healthStats.paths['GET /v1/files'].p50, p99: healthStats.paths['GET /v1/files'].p99 },
              certificateLogWritesInAll: writes().certlog,
              certificateFilesIssuedMsAfterFleetUp: filesIssuedMs,
              staleInstancesAtEnd: stand.api.context.fileReports.stale().length,
            }
          : {}),
      },
      s3: {
        configGets: configGets.length,
        configDownloads: configGets.filter((c) => c.outcome === 'ok').length,
        configNotModified: configGets.filter((c) => c.outcome !== 'ok').length,
        putObject: faults.callsOf('PutObject').length,
        getObject: faults.callsOf('GetObject').length,
      },
      secretsManager: { listSecrets: faults.callsOf('ListSecrets').length, getSecretValue: faults.callsOf('GetSecretValue').length, createSecret: faults.callsOf('CreateSecret').length },
      api: { shedBusy: { registrations: stand.api.registrations.shed, other: stand.api.concurrency.shed }, rejectionsByAction: Object.fromEntries(stand.api.context.rejections.totals) },
      rss: { apiProcessIdleMb: mb(idleRssBytes), apiProcessMaxMb: mb(rss.maxBytes()), apiProcessFinalMb: mb(process.memoryUsage().rss), driverProcessMb: mb(healthStats.rssBytes) },
    };
    save(summary);
    const r = summary.registration;
    const hl = summary.health.latencyMs;
    console.log(`\nagent API, one process, ${os.cpus().length} cores:`);
    console.log(`  registration: ${burst} agents at once, all registered in ${seconds(r.allRegisteredMs)} s (${r.perSecond}/s, median ${seconds(r.medianRegisteredMs)} s), ${r.failed} failed; answers ${JSON.stringify(r.registerStatuses)}`);
    console.log(`  S3 PUTs per registration: ${r.s3PutsPerRegistration.total} (nonce ${r.s3PutsPerRegistration.nonce}, certlog ${r.s3PutsPerRegistration.certlog}, audit ${r.s3PutsPerRegistration.audit})`);
    console.log(`  health: ${total} agents every ${healthInterval}: ${summary.health.reports} reports in ${healthSeconds} s, p50 ${hl?.p50} ms, p99 ${hl?.p99} ms, max ${hl?.max} ms; statuses ${JSON.stringify(summary.health.statuses)}`);
    console.log(`  config.jsonc GETs: ${summary.s3.configGets} (${summary.s3.configDownloads} download, ${summary.s3.configNotModified} answered 304); ListSecrets ${summary.secretsManager.listSecrets}, GetSecretValue ${summary.secretsManager.getSecretValue}`);
    console.log(`  RSS: API process max ${summary.rss.apiProcessMaxMb} MB; driver ${summary.rss.driverProcessMb} MB`);
    console.log(`written to ${out}`);
  } finally {
    rss.stop();
    driver?.stop();
    await stand?.stop({ terminate: false }).catch(() => undefined);
    await connection.close();
    destroyAwsClients(aws);
    await globalTeardown();
  }
}

runBenchmark(main);
