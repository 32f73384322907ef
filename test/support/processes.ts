/**
 * Worker OS processes for multi-process tests and the failover bench: each runs
 * the compiled CLI (`node dist/client/cli/main.js worker`) with its own worker
 * id, EC2 instance id, status port and (optionally) its own partitionable path
 * to Temporal.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
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
}

export interface WorkerProcess {
  spec: WorkerSpec;
  child: ChildProcess;
  statusUrl: string;
  logFile: string;
  exited: Promise<number | null>;
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
      NODE_NO_WARNINGS: '1',
    },
  });
  fs.closeSync(out);
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve((exitCode = code))));
  return {
    spec,
    child,
    statusUrl: `http://127.0.0.1:${statusPort}/v1/leader`,
    logFile,
    exited,
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

/** Workers whose status endpoint answers 200 right now. */
export async function answering(workers: readonly WorkerProcess[]): Promise<{ workerId: string; epoch?: number }[]> {
  const answers = await Promise.all(workers.filter((w) => w.alive()).map(async (w) => ({ w, a: await leaderStatusOf(w) })));
  return answers.filter(({ a }) => a.code === 200).map(({ w, a }) => ({ workerId: w.spec.workerId, epoch: a.epoch }));
}

export async function stopAll(workers: readonly WorkerProcess[]): Promise<void> {
  for (const w of workers) w.kill('SIGKILL');
  await Promise.all(workers.map((w) => w.exited));
}
