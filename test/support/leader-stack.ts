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
import { describeInterface, type InterfaceState } from '../../activities/ec2/network-interfaces';
import { ShardConfigStore } from '../../activities/s3/config-store';
import { ObjectStore } from '../../activities/s3/objects';
import { leaderWorkflowId, s3Keys } from '../../common/names';
import type { AuditEntry } from '../../common/types';
import type { SeedResult } from '../../scripts/seed-emulator';
import { eventually, listKeys, readJson } from './emulator';
import { Ec2FaultProxy } from './fault-proxy';
import { configText, seedShard, testConfig } from './fixtures';
import { createHarness, workflowBundle, type Harness } from './harness';
import { answering, CLI, leaderStatusOf, requireBuiltCli, spawnWorker, stopAll, type WorkerProcess } from './processes';
import { stackEnv } from './stack-env';
import { PartitionableTcpProxy } from './tcp-proxy';

export interface LeaderWorker extends WorkerProcess {
  ec2InstanceId: string;
  /** Set when started with `partitionable`: cut it to partition this worker from Temporal. */
  temporalPath?: PartitionableTcpProxy;
}

export interface LeaderStackOptions {
  shard: string;
  heartbeatTimeout?: string;
  maxHandoffsPerRun?: number;
}

export class LeaderStack {
  readonly workers: LeaderWorker[] = [];
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
    this.ec2 = new EC2Client({ region: env.region, endpoint: proxy.url, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  }

  static async create(options: LeaderStackOptions): Promise<LeaderStack> {
    requireBuiltCli();
    const env = stackEnv();
    const h = await createHarness({ shard: options.shard, bucket: `nstance-${options.shard}` });
    const seed = await seedShard(h);
    const text = configText(testConfig(seed, { shard: options.shard, bucket: h.bucket, size: 0 }));
    await new ShardConfigStore(new ObjectStore({ s3: h.aws.s3, bucket: h.bucket }), options.shard).writeConfig(text, { absent: true });
    const proxy = new Ec2FaultProxy({ target: env.awsEndpoint });
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

  async startWorker(workerId: string, opts: { partitionable?: boolean } = {}): Promise<LeaderWorker> {
    const env = stackEnv();
    const run = await this.h.aws.ec2.send(new RunInstancesCommand({ ImageId: this.seed.imageId, MinCount: 1, MaxCount: 1, SubnetId: this.seed.subnetIds[0], InstanceType: 't3.micro' }));
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

  async handoffAudits(): Promise<AuditEntry[]> {
    const keys = (await listKeys(this.h.aws.s3, this.h.bucket, s3Keys.auditPrefix(this.shard))).filter((k) => k.includes('.leader-handoff.'));
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

  async close(): Promise<void> {
    await stopAll(this.workers);
    await this.h.client.workflow.getHandle(leaderWorkflowId(this.shard)).terminate('test finished').catch(() => undefined);
    for (const p of this.tcpProxies) await p.close();
    await this.proxy.close();
    this.ec2.destroy();
    await this.h.close();
  }
}

/** Polls every status endpoint until `done` resolves; records the most answering at once and every moment with none. */
export function watchAnswering(stack: LeaderStack, everyMs = 100): { stop: () => Promise<{ maxAnswering: number; samples: number; zeroSamples: number; answeredBy: Set<string> }> } {
  let running = true;
  const result = { maxAnswering: 0, samples: 0, zeroSamples: 0, answeredBy: new Set<string>() };
  const loop = (async () => {
    while (running) {
      const now = await answering(stack.live());
      result.samples++;
      result.maxAnswering = Math.max(result.maxAnswering, now.length);
      if (now.length === 0) result.zeroSamples++;
      for (const a of now) result.answeredBy.add(a.workerId);
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return result;
    },
  };
}
