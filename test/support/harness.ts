/**
 * Runs a real shard worker against the test stack (Temporal dev server and
 * moto started by global-setup), with AWS clients wrapped in a FaultLayer.
 */
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, NativeConnection, Runtime, DefaultLogger, type Worker } from '@temporalio/worker';
import { createAwsClients, destroyAwsClients, type AwsClients } from '../../activities/aws/clients';
import type { ActivityDeps } from '../../activities';
import { createShardWorker, type ShardWorkerOptions } from '../../workers/worker';
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
  bundle ??= bundleWorkflowCode({ workflowsPath: require.resolve('../../workflows'), logger: new DefaultLogger('WARN') });
  return bundle;
}

export interface Harness {
  client: Client;
  aws: AwsClients;
  faults: FaultLayer;
  bucket: string;
  shard: string;
  /**
   * Starts a worker; stop it with the returned function (graceful shutdown). `done` is its run,
   * which rejects if the worker fails. `options.agentApi` serves the agent API from it.
   */
  startWorker(overrides?: Partial<ActivityDeps>, options?: Pick<ShardWorkerOptions, 'agentApi'>): Promise<{ worker: Worker; done: Promise<void>; stop: () => Promise<void> }>;
  close(): Promise<void>;
}

export async function createHarness(options: { shard: string; bucket: string }): Promise<Harness> {
  installQuietLogger();
  const env = stackEnv();
  const aws = createAwsClients({ region: env.region, endpoint: env.awsEndpoint, maxAttempts: 2 });
  const faults = new FaultLayer().attach(aws.ec2, aws.s3, aws.elbv2, aws.secrets);
  await aws.s3.send(new CreateBucketCommand({ Bucket: options.bucket })).catch((err: Error) => {
    if (!/BucketAlreadyOwnedByYou|BucketAlreadyExists/.test(err.name)) throw err;
  });
  const connection = await Connection.connect({ address: env.temporalAddress });
  const client = new Client({ connection });
  const running: { stop: () => Promise<void> }[] = [];

  return {
    client,
    aws,
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
        aws,
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
      destroyAwsClients(aws);
    },
  };
}
