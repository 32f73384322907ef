/**
 * Runs a real shard worker against the test stack (Temporal dev server and
 * moto started by global-setup), with AWS clients wrapped in a FaultLayer.
 */
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, NativeConnection, Runtime, DefaultLogger, type Worker } from '@temporalio/worker';
import type { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { ACTIVITY_SDK_ATTEMPTS, createAwsClients, destroyAwsClients, type AwsClients } from '../../adapters/aws/clients';
import type { ActivityDeps } from '../../activities';
import { createShardWorker, type ShardWorkerOptions } from '../../workers/worker';
import { WORKFLOW_INTERCEPTOR_MODULES, WORKFLOW_PRELOAD_MODULES } from '../../workers/workflow-interceptors';
import { nstanceDataConverter, WORKFLOW_BUNDLE_CONVERTER_OPTIONS } from '../../adapters/temporal/data-converter';
import { FaultLayer } from './faults';
import { stackEnv } from './stack-env';

let loggerInstalled = false;

/** Quiet SDK logs: errors only (injected faults make activity retries, which log warnings), so test output stays readable. */
function installQuietLogger(): void {
  if (loggerInstalled) return;
  loggerInstalled = true;
  Runtime.install({ logger: new DefaultLogger('ERROR') });
}

let bundle: Promise<{ code: string }> | undefined;
export function workflowBundle(): Promise<{ code: string }> {
  bundle ??= bundleWorkflowCode({ workflowsPath: require.resolve('../../workflows'), workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES, preloadModules: WORKFLOW_PRELOAD_MODULES, ...WORKFLOW_BUNDLE_CONVERTER_OPTIONS, logger: new DefaultLogger('WARN') });
  return bundle;
}

/**
 * moto, like ELBv2, answers a DescribeTargetHealth that names a deregistered target with that target,
 * "unused" for reason Target.NotRegistered; the fault layer's keepDraining only adds a draining target
 * that an answer lacks. Below the fault layer, such entries are dropped, so keepDraining also holds for
 * drains that ask about their own target. The activities read both forms alike (not registered = absent;
 * test/unit/targets.test.ts covers the "unused" form).
 */
function dropUnregisteredTargets(elbv2: ElasticLoadBalancingV2Client): void {
  type Described = { output: { TargetHealthDescriptions?: { TargetHealth?: { State?: string; Reason?: string } }[] } };
  const middleware = (next: (args: object) => Promise<Described>, context: { commandName?: string }) => async (args: object) => {
    const out = await next(args);
    const list = out.output.TargetHealthDescriptions;
    if (context.commandName === 'DescribeTargetHealthCommand' && list) {
      out.output.TargetHealthDescriptions = list.filter((d) => !(d.TargetHealth?.State === 'unused' && d.TargetHealth.Reason === 'Target.NotRegistered'));
    }
    return out;
  };
  elbv2.middlewareStack.add(middleware as never, { step: 'initialize', name: 'harnessDropUnregisteredTargets', override: true });
}

export interface Harness {
  client: Client;
  /** Clients for the test itself (SDK retries on): judged by the IAM proof, never credited as the worker's use. */
  aws: AwsClients;
  /** The clients the workers' activities use: one SDK attempt, as in production. Same fault layer. */
  activityAws: AwsClients;
  /**
   * The worker's other clients (SDK retries on): its agent API's, and a test's that stands in for the
   * worker (activities or an agent API of its own). Same fault layer, recorded as the worker's.
   */
  workerAws: AwsClients;
  faults: FaultLayer;
  bucket: string;
  shard: string;
  /**
   * Starts a worker; stop it with the returned function (graceful shutdown). `done` is its run,
   * which rejects if the worker fails. `options.agentApi` serves the agent API from it.
   */
  startWorker(
    overrides?: Partial<ActivityDeps>,
    options?: Pick<ShardWorkerOptions, 'agentApi' | 'ec2Limits' | 'shardWorkersRefreshMs'>,
  ): Promise<{ worker: Worker; done: Promise<void>; stop: () => Promise<void> }>;
  close(): Promise<void>;
}

export async function createHarness(options: { shard: string; bucket: string }): Promise<Harness> {
  installQuietLogger();
  const env = stackEnv();
  const aws = createAwsClients({ region: env.region, endpoint: env.awsEndpoint, maxAttempts: 2 });
  const activityAws = createAwsClients({ region: env.region, endpoint: env.awsEndpoint, maxAttempts: ACTIVITY_SDK_ATTEMPTS });
  const workerAws = createAwsClients({ region: env.region, endpoint: env.awsEndpoint, maxAttempts: 2 });
  const faults = new FaultLayer().attachAll(aws, 'test').attachAll(activityAws).attachAll(workerAws);
  for (const set of [aws, activityAws, workerAws]) dropUnregisteredTargets(set.elbv2);
  await aws.s3.send(new CreateBucketCommand({ Bucket: options.bucket })).catch((err: Error) => {
    if (!/BucketAlreadyOwnedByYou|BucketAlreadyExists/.test(err.name)) throw err;
  });
  const connection = await Connection.connect({ address: env.temporalAddress });
  const client = new Client({ connection, dataConverter: nstanceDataConverter() });
  const running: { stop: () => Promise<void> }[] = [];

  return {
    client,
    aws,
    activityAws,
    workerAws,
    faults,
    bucket: options.bucket,
    shard: options.shard,
    async startWorker(overrides = {}, workerOptions = {}) {
      const nativeConnection = await NativeConnection.connect({ address: env.temporalAddress });
      const worker = await createShardWorker({
        connection: nativeConnection,
        client,
        namespace: 'default',
        shard: options.shard,
        bucket: options.bucket,
        aws: activityAws,
        agentAws: workerAws,
        workerId: `test-${process.pid}-${running.length}`,
        workflowBundle: await workflowBundle(),
        activityOverrides: { pollIntervalMs: 250, ...overrides },
        tuning: { shutdownGraceTime: '2s' },
        ...workerOptions,
      });
      const done = worker.run();
      const handle = {
        worker,
        done,
        stop: async () => {
          if (worker.getState() === 'RUNNING') worker.shutdown();
          await done;
          await nativeConnection.close();
        },
      };
      running.push(handle);
      return handle;
    },
    async close() {
      for (const r of running) await r.stop().catch(() => undefined);
      await connection.close();
      for (const set of [aws, activityAws, workerAws]) destroyAwsClients(set);
    },
  };
}
