/**
 * The multi-process leadership setup shared by the leader tests and the bench:
 * a seeded shard (config in S3 naming the leader ENI), moto behind the ENI fault
 * proxy, one EC2 instance per worker, and worker OS processes, each optionally
 * behind its own partitionable TCP path to Temporal.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { describeInterface, type InterfaceState } from '../../adapters/ec2/network-interfaces';
import { readLeaderRecord, type LeaderRecord } from '../../activities/leader';
import { ShardConfigStore } from '../../adapters/s3/config-store';
import { ObjectStore } from '../../adapters/s3/objects';
import { leaderWorkflowId, s3Keys } from '../../common/names';
import type { AuditEntry } from '../../common/types';
import type { LeaderStatus } from '../../workflows/decisions/leader';
import { leaderStatusQuery } from '../../workflows/definitions';
import type { SeedResult } from '../../scripts/seed-emulator';
import { eventually, listKeys, readJson } from './emulator';
import { Ec2FaultProxy } from './fault-proxy';
import { configText, seedShard, testConfig } from './fixtures';
import { createHarness, workflowBundle, type Harness } from './harness';
import { answering, answeringNow, CLI, leaderStatusOf, requireBuiltCli, spawnWorker, stopAll, type WorkerProcess } from './processes';
import { stackEnv } from './stack-env';
import { PartitionableTcpProxy } from './tcp-proxy';
import { parseConfigText, type NstanceConfig } from '../../common/config';
import { workerPolicy, type PolicyDocument } from '../../common/iam/policy';
import { MOTO_ACCOUNT } from './faults';
import { TAG } from '../../common/names';
import { proveWorkerCalls, type WorkerProofResult } from './worker-proof';
import { trustFor } from './sts-trust';

/** The access key of the test's own reads through the fault proxy (LeaderStack.ec2), so the IAM proof tells them from the workers'. */
export const TEST_READER_KEY = 'test-reader';

export interface LeaderWorker extends WorkerProcess {
  ec2InstanceId: string;
  /** Set when started with `partitionable`: cut it to partition this worker from Temporal. */
  temporalPath?: PartitionableTcpProxy;
}

export interface LeaderStackOptions {
  shard: string;
  heartbeatTimeout?: string;
  maxHandoffsPerRun?: number;
  /** Merged over the first config's shard section (as testConfig's): workers cache it, so settings a test needs from the start go here. */
  shardSettings?: Record<string, unknown>;
  /** shard.infra.assume_role of the config; the fault proxy then evaluates each AssumeRole of that role against the generated trust (sts-trust.ts). */
  assumeRole?: { role_arn: string; external_id: string; session_name?: string; duration?: string };
  /** The ExternalId the role's generated trust policy requires (default: the config's external_id). */
  trustedExternalId?: string;
  /** The first config's cluster.secrets (as testConfig's). */
  secrets?: Record<string, unknown>;
}

export class LeaderStack {
  /** The config each stack's shard runs, for the IAM proof of its workers' calls. */
  private static readonly configs = new Map<string, string>();
  readonly workers: LeaderWorker[] = [];
  private readonly otherShards: string[] = [];
  /** Reads EC2 through the fault proxy, so attaching/detaching states are visible. */
  readonly ec2: EC2Client;
  private tcpProxies: PartitionableTcpProxy[] = [];

  private constructor(
    readonly h: Harness,
    readonly seed: SeedResult,
    readonly proxy: Ec2FaultProxy,
    readonly logDir: string,
    private readonly bundlePath: string,
    readonly options: LeaderStackOptions,
  ) {
    const env = stackEnv();
    this.ec2 = new EC2Client({ region: env.region, endpoint: proxy.url, credentials: { accessKeyId: TEST_READER_KEY, secretAccessKey: 'test' } });
  }

  static async create(options: LeaderStackOptions): Promise<LeaderStack> {
    requireBuiltCli();
    const env = stackEnv();
    const h = await createHarness({ shard: options.shard, bucket: `nstance-${options.shard}` });
    const seed = await seedShard(h);
    const assume = options.assumeRole ? { infra: { provider: 'aws', region: seed.region, zone: seed.zone, assume_role: { duration: '15m', ...options.assumeRole } } } : {};
    const text = configText(testConfig(seed, { shard: options.shard, bucket: h.bucket, size: 0, shardSettings: { ...options.shardSettings, ...assume }, secrets: options.secrets }));
    LeaderStack.configs.set(options.shard, text);
    await new ShardConfigStore(new ObjectStore({ s3: h.aws.s3, bucket: h.bucket }), options.shard).writeConfig(text, { absent: true });
    // The role's owner generated its trust from the config, with the ExternalId it expects (`nstance iam policy --cross-account`).
    const run = parseConfigText(text, 'config.jsonc');
    const role = run.shard.infra.assume_role;
    const trust = role
      ? trustFor({ ...run, shard: { ...run.shard, infra: { ...run.shard.infra, assume_role: { ...role, external_id: options.trustedExternalId ?? role.external_id } } } })
      : undefined;
    const proxy = new Ec2FaultProxy({ target: env.awsEndpoint, recordCalls: true, trust });
    await proxy.start();
    const logDir = fs.mkdtempSync(path.join(process.env.NSTANCE_TEST_STACK_LOGS ?? os.tmpdir(), `leader-${options.shard}-`));
    // One bundle for every worker process: bundling three times would starve a small machine.
    const bundlePath = path.join(logDir, 'workflow-bundle.js');
    fs.writeFileSync(bundlePath, (await workflowBundle()).code);
    return new LeaderStack(h, seed, proxy, logDir, bundlePath, options);
  }

  get shard(): string {
    return this.options.shard;
  }

  async startWorker(workerId: string, opts: { partitionable?: boolean; env?: Record<string, string> } = {}): Promise<LeaderWorker> {
    const env = stackEnv();
    // Worker instances carry the cluster tag: the generated IAM policy attaches the leader ENI only to those.
    const run = await this.h.aws.ec2.send(
      new RunInstancesCommand({
        ImageId: this.seed.imageId,
        MinCount: 1,
        MaxCount: 1,
        SubnetId: this.seed.subnetIds[0],
        InstanceType: 't3.micro',
        TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: TAG.clusterId, Value: 'test' }, { Key: 'Name', Value: `worker-${workerId}` }] }],
      }),
    );
    const ec2InstanceId = run.Instances?.[0]?.InstanceId ?? '';
    let temporalPath: PartitionableTcpProxy | undefined;
    if (opts.partitionable) {
      temporalPath = PartitionableTcpProxy.forAddress(env.temporalAddress);
      await temporalPath.start();
      this.tcpProxies.push(temporalPath);
    }
    const w = await spawnWorker({
      workerId,
      ec2InstanceId,
      shard: this.shard,
      bucket: this.h.bucket,
      temporalAddress: temporalPath?.address ?? env.temporalAddress,
      awsEndpoint: this.proxy.url,
      region: env.region,
      logDir: this.logDir,
      workflowBundlePath: this.bundlePath,
      heartbeatTimeout: this.options.heartbeatTimeout,
      maxHandoffsPerRun: this.options.maxHandoffsPerRun,
      env: opts.env,
    });
    const worker: LeaderWorker = Object.assign(w, { ec2InstanceId, temporalPath });
    this.workers.push(worker);
    return worker;
  }

  live(): LeaderWorker[] {
    return this.workers.filter((w) => w.alive());
  }

  async eni(): Promise<InterfaceState> {
    return describeInterface(this.ec2, this.seed.leaderInterfaceId);
  }

  /** Until `w` answers as leader and EC2 shows the ENI attached to its instance; returns the epoch. */
  async waitForLeader(w: LeaderWorker, timeoutMs = 60_000): Promise<{ epoch: number; eni: InterfaceState }> {
    return eventually(
      `${w.spec.workerId} to lead and hold the ENI`,
      async () => {
        const status = await leaderStatusOf(w);
        if (status.code !== 200) return undefined;
        const eni = await this.eni();
        const a = eni.attachment;
        return a?.instanceId === w.ec2InstanceId && a.status === 'attached' && eni.status === 'in-use' ? { epoch: status.epoch ?? 0, eni } : undefined;
      },
      timeoutMs,
      200,
    );
  }

  /** Whoever answers as leader once exactly one does and the ENI is attached to it. */
  async waitForAnyLeader(exclude: string[] = [], timeoutMs = 60_000): Promise<LeaderWorker> {
    return eventually(
      'a new leader holding the ENI',
      async () => {
        const now = await answering(this.live());
        if (now.length !== 1 || exclude.includes(now[0]?.workerId ?? '')) return undefined;
        const w = this.workers.find((x) => x.spec.workerId === now[0]?.workerId);
        const eni = await this.eni();
        return w && eni.attachment?.instanceId === w.ec2InstanceId && eni.attachment.status === 'attached' ? w : undefined;
      },
      timeoutMs,
      200,
    );
  }

  /**
   * Who answers (status endpoint and real agent API) once only `workerId` does, at `epoch`,
   * on both; after `timeoutMs`, whoever answers then, for the caller's assertion to show.
   * Waits only because a just-started worker's agent API listens a moment after it joins.
   */
  async settledAnswering(workerId: string, epoch: number, timeoutMs = 20_000): Promise<{ workerId: string; epoch?: number; agentApi: boolean }[]> {
    const want = JSON.stringify([{ workerId, epoch, agentApi: true }]);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const now = await answeringNow(this.live());
      if (JSON.stringify(now) === want || Date.now() > deadline) return now;
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** shard/<shard>/leader.json as S3 has it. */
  async leaderRecord(): Promise<LeaderRecord | undefined> {
    return readLeaderRecord(new ObjectStore({ s3: this.h.aws.s3, bucket: this.h.bucket }), this.shard);
  }

  /** The leader workflow's own state (query), generations included. */
  async status(): Promise<LeaderStatus> {
    return this.h.client.workflow.getHandle(leaderWorkflowId(this.shard)).query(leaderStatusQuery);
  }

  async handoffAudits(): Promise<AuditEntry[]> {
    return this.audits('leader-handoff');
  }

  /** The shard's audit entries of one action, by epoch. */
  async audits(action: string): Promise<AuditEntry[]> {
    const keys = (await listKeys(this.h.aws.s3, this.h.bucket, s3Keys.auditPrefix(this.shard))).filter((k) => k.includes(`.${action}.`));
    const entries = await Promise.all(keys.map((k) => readJson<AuditEntry>(this.h.aws.s3, this.h.bucket, k)));
    return entries.sort((a, b) => Number(a.details?.epoch) - Number(b.details?.epoch));
  }

  /** Runs the built CLI against the test stack; resolves with stdout (rejects with stderr on failure). */
  cli(args: string[]): Promise<string> {
    const env = stackEnv();
    return new Promise((resolve, reject) => {
      execFile(
        process.execPath,
        [CLI, ...args],
        { env: { ...process.env, TEMPORAL_ADDRESS: env.temporalAddress, NSTANCE_SHARD: this.shard, NSTANCE_ACTOR: 'test', NODE_NO_WARNINGS: '1' }, timeout: 90_000 },
        (err, stdout, stderr) => (err ? reject(new Error(`nstance ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout)),
      );
    });
  }

  /**
   * The IAM proof of every AWS call the worker processes made so far (all services, through the proxy),
   * against the generated policy or `policy`; throws naming each refused request.
   */
  async proveWorkerCalls(policy?: PolicyDocument): Promise<WorkerProofResult> {
    const config = this.config;
    const policies = policy ? [policy] : [config, ...this.otherShards.map((id) => ({ ...config, shard: { ...config.shard, id } }))].map((c) => workerPolicy(c, { account: MOTO_ACCOUNT }));
    return proveWorkerCalls(this.h.aws.ec2, this.proxy.wire, this.proxy.calls, config, stackEnv().region, { ignoreKeys: [TEST_READER_KEY], policies });
  }

  /** The IAM proof also grants the policy of `otherShard` (this config with that shard id): for a test that runs another shard's workflow on these workers. */
  alsoProveShard(otherShard: string): void {
    this.otherShards.push(otherShard);
  }

  /** The config the stack's shard runs. */
  get config(): NstanceConfig {
    return parseConfigText(LeaderStack.configs.get(this.shard) as string, 'config.jsonc');
  }

  async close(): Promise<void> {
    await stopAll(this.workers);
    await this.h.client.workflow.getHandle(leaderWorkflowId(this.shard)).terminate('test finished').catch(() => undefined);
    for (const p of this.tcpProxies) await p.close();
    await this.proxy.close();
    this.ec2.destroy();
    // The IAM proof for every AWS call of the worker processes (they run outside the fault layer, behind the proxy),
    // with the tags EC2 holds for the worker instances and the ENI: read before the harness's clients close.
    let refused: unknown;
    if (process.env.NSTANCE_IAM_PROOF !== 'off') await this.proveWorkerCalls().catch((err: unknown) => (refused = err));
    await this.h.close();
    if (refused) throw refused;
  }
}

export { watchAnswering, type AnsweringSeen } from './answering-watch';
