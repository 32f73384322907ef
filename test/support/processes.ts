/**
 * Worker OS processes for multi-process tests and the failover bench: each runs
 * the compiled CLI (`node dist/client/cli/main.js worker`) with its own worker
 * id, EC2 instance id, status port and (optionally) its own partitionable path
 * to Temporal.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { request as httpsRequest } from 'node:https';
import * as net from 'node:net';
import * as path from 'node:path';

export const REPO_ROOT = path.resolve(__dirname, '..', '..', ...(path.basename(path.resolve(__dirname, '..', '..')) === 'dist' ? ['..'] : []));
export const CLI = path.join(REPO_ROOT, 'dist', 'client', 'cli', 'main.js');

export function requireBuiltCli(): string {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (scripts/test.sh builds before the integration tests)`);
  return CLI;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

export interface WorkerSpec {
  workerId: string;
  ec2InstanceId: string;
  shard: string;
  bucket: string;
  temporalAddress: string;
  awsEndpoint: string;
  region: string;
  logDir: string;
  workflowBundlePath?: string;
  heartbeatTimeout?: string;
  maxHandoffsPerRun?: number;
  /** More environment for the worker (NSTANCE_METRICS_PORT, ...). */
  env?: Record<string, string>;
}

export interface WorkerProcess {
  spec: WorkerSpec;
  child: ChildProcess;
  statusUrl: string;
  /** The worker's real agent API (HTTPS): answers 503 unless it leads. */
  agentUrl: string;
  logFile: string;
  exited: Promise<number | null>;
  /** When the process exited (ms since epoch); undefined while it runs. */
  exitedAt(): number | undefined;
  alive(): boolean;
  kill(signal: NodeJS.Signals): void;
  log(): string;
}

export async function spawnWorker(spec: WorkerSpec): Promise<WorkerProcess> {
  const cli = requireBuiltCli();
  const statusPort = await freePort();
  const agentPort = await freePort();
  const logFile = path.join(spec.logDir, `${spec.workerId}.log`);
  const out = fs.openSync(logFile, 'a');
  const child = spawn(process.execPath, [cli, 'worker'], {
    cwd: REPO_ROOT,
    stdio: ['ignore', out, out],
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: spec.temporalAddress,
      TEMPORAL_NAMESPACE: 'default',
      AWS_ENDPOINT_URL: spec.awsEndpoint,
      AWS_REGION: spec.region,
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      NSTANCE_SHARD: spec.shard,
      NSTANCE_BUCKET: spec.bucket,
      NSTANCE_WORKER_ID: spec.workerId,
      NSTANCE_EC2_INSTANCE_ID: spec.ec2InstanceId,
      NSTANCE_AGENT_STATUS_PORT: String(statusPort),
      NSTANCE_AGENT_STATUS_HOST: '127.0.0.1',
      NSTANCE_AGENT_API_PORT: String(agentPort),
      NSTANCE_AGENT_API_HOST: '127.0.0.1',
      NSTANCE_LEADER_HEARTBEAT_TIMEOUT: spec.heartbeatTimeout ?? '3s',
      ...(spec.maxHandoffsPerRun ? { NSTANCE_LEADER_MAX_HANDOFFS_PER_RUN: String(spec.maxHandoffsPerRun) } : {}),
      ...(spec.workflowBundlePath ? { NSTANCE_WORKFLOW_BUNDLE: spec.workflowBundlePath } : {}),
      ...spec.env,
      NODE_NO_WARNINGS: '1',
    },
  });
  fs.closeSync(out);
  let exitCode: number | null | undefined;
  let exitedAt: number | undefined;
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      exitedAt = Date.now();
      resolve((exitCode = code));
    }),
  );
  return {
    spec,
    child,
    statusUrl: `http://127.0.0.1:${statusPort}/v1/leader`,
    agentUrl: `https://127.0.0.1:${agentPort}/v1/leader-probe`,
    logFile,
    exited,
    exitedAt: () => exitedAt,
    alive: () => exitCode === undefined,
    kill: (signal) => {
      if (exitCode === undefined) child.kill(signal);
    },
    log: () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : ''),
  };
}

export interface StatusAnswer {
  code: number;
  workerId?: string;
  epoch?: number;
}

/** GET the worker's leader-fenced status endpoint; code 0 when it does not answer at all. */
export async function leaderStatusOf(w: WorkerProcess, timeoutMs = 1_000): Promise<StatusAnswer> {
  try {
    const res = await fetch(w.statusUrl, { signal: AbortSignal.timeout(timeoutMs) });
    const body = (await res.json()) as { workerId?: string; epoch?: number };
    return { code: res.status, workerId: body.workerId, epoch: body.epoch };
  } catch {
    return { code: 0 };
  }
}

/**
 * The HTTP status of the worker's real agent API for any request (0: no answer, e.g. not
 * listening yet). It checks the leadership gate before routing, so a leader answers 404
 * for this unknown route and anyone else 503.
 */
export function agentApiStatusOf(w: WorkerProcess, timeoutMs = 1_000): Promise<number> {
  return new Promise((resolve) => {
    // Self-signed by the cluster CA, and no client certificate: only the leadership gate is under test.
    const req = httpsRequest(w.agentUrl, { method: 'GET', rejectUnauthorized: false, timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
    req.end();
  });
}

export interface Answer {
  workerId: string;
  /** From the status endpoint; undefined when only the agent API answered. */
  epoch?: number;
  /** The real agent API answered (anything but 503). */
  agentApi: boolean;
  /** When the answers arrived (ms since epoch). */
  at: number;
}

/**
 * Workers answering as leader right now: the status endpoint says 200, or the real
 * agent API answers anything but 503. Either counts, so "never two at once" covers both.
 */
export async function answering(workers: readonly WorkerProcess[]): Promise<Answer[]> {
  const answers = await Promise.all(
    workers.filter((w) => w.alive()).map(async (w) => {
      const [status, agent] = await Promise.all([leaderStatusOf(w), agentApiStatusOf(w)]);
      return { w, status, agentApi: agent !== 0 && agent !== 503, at: Date.now() };
    }),
  );
  return answers
    .filter(({ status, agentApi }) => status.code === 200 || agentApi)
    .map(({ w, status, agentApi, at }) => ({ workerId: w.spec.workerId, epoch: status.code === 200 ? status.epoch : undefined, agentApi, at }));
}

/** `answering` without the timing: what to compare in a settled state. */
export async function answeringNow(workers: readonly WorkerProcess[]): Promise<{ workerId: string; epoch?: number; agentApi: boolean }[]> {
  return (await answering(workers)).map(({ workerId, epoch, agentApi }) => ({ workerId, epoch, agentApi }));
}

export async function stopAll(workers: readonly WorkerProcess[]): Promise<void> {
  for (const w of workers) w.kill('SIGKILL');
  await Promise.all(workers.map((w) => w.exited));
}
