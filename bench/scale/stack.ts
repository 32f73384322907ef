/**
 * Everything the scale benchmark runs against: a private Temporal dev server and moto
 * (test/support/global-setup.ts), a seeded shard with subnets large enough for thousands
 * of instances, the HTTP fault proxy enforcing EC2's token buckets and ClientToken rules
 * in front of moto, and helpers to run the CLI, a worker process and the simulated
 * fleet's process the way a user would (README: `nstance worker`, `nstance config apply`,
 * `nstance group scale`).
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { IAMClient } from '@aws-sdk/client-iam';
import { Client, Connection } from '@temporalio/client';
import { createAwsClients, destroyAwsClients, type AwsClients } from '../../adapters/aws/clients';
import { groupWorkflowId, leaderWorkflowId } from '../../common/names';
import type { GroupStatus } from '../../common/types';
import { ensureSubnet } from '../../scripts/seed/ec2';
import { seedEmulator, type SeedResult } from '../../scripts/seed-emulator';
import { eventually } from '../../test/support/emulator';
import { Ec2FaultProxy } from '../../test/support/fault-proxy';
import { serverGroupsByName } from '../../test/support/global-setup';
import { workflowBundle } from '../../test/support/harness';
import { CLI, leaderStatusOf, REPO_ROOT, requireBuiltCli, spawnWorker, type WorkerProcess } from '../../test/support/processes';
import { stackEnv, type StackEnv } from '../../test/support/stack-env';
import { groupStatusQuery, leaderStatusQuery } from '../../workflows/definitions';
import { benchConfigText, type ConfigVariant } from './config';
import { FleetProcess } from './fleet-process';
import { replayGroupRuns, type ReplayFindings } from './replay';
import { LedgerHeld } from './ledger';
import type { ScaleOptions } from './options';
import { nstanceDataConverter } from '../../adapters/temporal/data-converter';

/** The group status query's result, as the benchmark reads it (counts, a page of members, diagnostics). */
export type BenchGroupStatus = GroupStatus;

/** Two /18s (16k addresses each): moto never frees a terminated instance's address, and a run launches thousands. */
const BENCH_SUBNET_CIDRS = ['10.0.64.0/18', '10.0.128.0/18'] as const;

export class ScaleStack {
  private workers = 0;
  private configs = 0;
  /** Set when something worth reading was saved in the log directory (a history that does not replay). */
  keepLogDir = false;
  /** What EC2 holds, from the proxy's ledger (less what the benchmark removed straight at moto). */
  readonly held: LedgerHeld;

  private constructor(
    readonly env: StackEnv,
    readonly shard: string,
    readonly bucket: string,
    readonly seed: SeedResult,
    readonly subnetIds: string[],
    /** Clients straight to moto: the benchmark's own reads, never counted or throttled. */
    readonly aws: AwsClients,
    readonly proxy: Ec2FaultProxy,
    readonly client: Client,
    private readonly connection: Connection,
    readonly logDir: string,
    readonly bundlePath: string,
    readonly options: ScaleOptions,
  ) {
    this.held = new LedgerHeld(proxy.instanceEvents);
  }

  static async create(options: ScaleOptions): Promise<ScaleStack> {
    requireBuiltCli();
    const env = stackEnv();
    const shard = `scale-${Date.now().toString(36)}`;
    const bucket = `nstance-${shard}`;
    const aws = createAwsClients({ region: env.region, endpoint: env.awsEndpoint });
    const iam = new IAMClient({ region: env.region, endpoint: env.awsEndpoint });
    const seed = await seedEmulator({ ...aws, iam, bucket, name: shard }).finally(() => iam.destroy());
    const subnetIds = [];
    for (const [i, cidr] of BENCH_SUBNET_CIDRS.entries()) subnetIds.push(await ensureSubnet(aws.ec2, seed.vpcId, seed.zone, cidr, `${shard}-bench-${i + 1}`));
    const proxy = new Ec2FaultProxy({ target: env.awsEndpoint, ec2Limits: true, clientTokens: true });
    await proxy.start();
    const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nstance-bench-scale-'));
    // One bundle for every worker the benchmark starts: bundling is seconds of CPU on a small machine.
    const bundlePath = path.join(logDir, 'workflow-bundle.js');
    fs.writeFileSync(bundlePath, (await workflowBundle()).code);
    const connection = await Connection.connect({ address: env.temporalAddress });
    const client = new Client({ connection, dataConverter: nstanceDataConverter() });
    return new ScaleStack(env, shard, bucket, seed, subnetIds, aws, proxy, client, connection, logDir, bundlePath, options);
  }

  /** Process groups of the dev server and moto (global setup starts each detached). */
  serverGroups(): { temporal?: number; moto?: number } {
    const { temporal, moto } = serverGroupsByName();
    return { temporal, moto };
  }

  configText(variant: ConfigVariant = {}): string {
    return benchConfigText({ seed: this.seed, shard: this.shard, subnetIds: this.subnetIds, createRateLimit: this.options.createRateLimit, path: this.options.configPath }, REPO_ROOT, variant);
  }

  private writeConfig(variant: ConfigVariant): string {
    const file = path.join(this.logDir, `config-${++this.configs}.jsonc`);
    fs.writeFileSync(file, this.configText(variant));
    return file;
  }

  /** `nstance config apply` of the benchmark config with `variant`; returns the file applied. */
  async applyConfig(variant: ConfigVariant = {}): Promise<string> {
    const file = this.writeConfig(variant);
    await this.cli(['config', 'apply', '-f', file, '--yes']);
    return file;
  }

  /** Whether this build's config schema accepts `variant` (`nstance config validate`). */
  async accepts(variant: ConfigVariant): Promise<boolean> {
    return this.cli(['config', 'validate', '-f', this.writeConfig(variant)]).then(
      () => true,
      () => false,
    );
  }

  /** The built CLI, as a user runs it (its AWS calls go straight to moto: they are not the worker's). */
  cli(args: string[], timeoutMs = 120_000): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(
        process.execPath,
        [CLI, ...args],
        {
          env: { ...process.env, TEMPORAL_ADDRESS: this.env.temporalAddress, NSTANCE_SHARD: this.shard, NSTANCE_BUCKET: this.bucket, NSTANCE_ACTOR: 'bench', NODE_NO_WARNINGS: '1' },
          timeout: timeoutMs,
        },
        (err, stdout, stderr) => (err ? reject(new Error(`nstance ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout)),
      );
    });
  }

  /** A worker process (`nstance worker`) whose AWS calls go through the fault proxy; resolves once it leads the shard. */
  async startWorker(): Promise<WorkerProcess> {
    const w = await spawnWorker({
      workerId: `bench-w${++this.workers}`,
      ec2InstanceId: this.seed.serverInstanceId,
      shard: this.shard,
      bucket: this.bucket,
      temporalAddress: this.env.temporalAddress,
      awsEndpoint: this.proxy.url,
      region: this.env.region,
      logDir: this.logDir,
      workflowBundlePath: this.bundlePath,
      heartbeatTimeout: this.options.leaderHeartbeatTimeout,
    });
    await eventually(`worker ${w.spec.workerId} to lead shard ${this.shard} (log ${w.logFile})`, async () => {
      if (!w.alive()) throw new Error(`worker exited:\n${w.log().slice(-2000)}`);
      return (await leaderStatusOf(w)).code === 200 ? true : undefined;
    }, 120_000, 250);
    return w;
  }

  /** SIGTERM (hand over, finish in-flight tasks), SIGKILL if it takes too long. */
  async stopWorker(w: WorkerProcess, timeoutMs = 30_000): Promise<void> {
    w.kill('SIGTERM');
    const timer = setTimeout(() => w.kill('SIGKILL'), timeoutMs);
    await w.exited;
    clearTimeout(timer);
  }

  /** The simulated fleet in its own process, dialling `w`'s agent API. */
  startFleet(w: WorkerProcess, name: string): Promise<FleetProcess> {
    const connect = new URL(w.agentUrl).host;
    return FleetProcess.start(
      {
        shard: this.shard,
        bucket: this.bucket,
        awsEndpoint: this.env.awsEndpoint,
        region: this.env.region,
        connect,
        pollMs: this.options.fleetPollMs,
        discovery: this.options.fleetDiscovery,
        healthIntervalMs: this.options.fleetHealthIntervalMs,
        userdataConcurrency: this.options.fleetUserdataConcurrency,
        statsMs: Math.max(1_000, this.options.sampleMs),
      },
      this.logDir,
      name,
    );
  }

  groupStatus(): Promise<BenchGroupStatus> {
    return this.client.workflow.getHandle(groupWorkflowId(this.shard, 'default', 'web')).query(groupStatusQuery) as Promise<BenchGroupStatus>;
  }

  /** Replays the group workflow's runs of a window (see replay.ts); failing histories are kept in the log directory. */
  async replayGroup(window: { from: number; to: number }): Promise<ReplayFindings> {
    const findings = await replayGroupRuns(this.client, this.shard, window, this.bundlePath, path.join(this.logDir, 'replay-failures'));
    if (findings.failed > 0) this.keepLogDir = true;
    return findings;
  }

  /** The shard's leadership epoch (each new leader, or a leader that lost its lease and took it again, bumps it). */
  leaderEpoch(): Promise<number | undefined> {
    return this.client.workflow
      .getHandle(leaderWorkflowId(this.shard))
      .query(leaderStatusQuery)
      .then((s) => s.epoch)
      .catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.proxy.close();
    await this.connection.close();
    destroyAwsClients(this.aws);
    if (!this.options.keepLogs && !this.keepLogDir) fs.rmSync(this.logDir, { recursive: true, force: true });
  }
}

/** In-service members, as the status query counts them. */
export function inServiceOf(s: BenchGroupStatus): number {
  return s.inService;
}
