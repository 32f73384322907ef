import { hostname } from 'node:os';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../activities';
import { awsClientOptionsFromEnv, createAwsClients, destroyAwsClients, type AwsClients } from '../activities/aws/clients';
import { shardTaskQueue } from '../common/names';

export interface ShardWorkerOptions {
  connection: NativeConnection;
  /** Used by activities that start workflows. */
  client: Client;
  namespace: string;
  shard: string;
  bucket: string;
  aws: AwsClients;
  workerId: string;
  /** Pre-built bundle (tests share one); otherwise workflows are bundled from source. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  activityOverrides?: Partial<ActivityDeps>;
  /** Extra worker options (shutdown grace, concurrency) for tests and tuning. */
  tuning?: Partial<Pick<WorkerOptions, 'shutdownGraceTime' | 'maxConcurrentActivityTaskExecutions' | 'maxCachedWorkflows'>>;
}

export async function createShardWorker(options: ShardWorkerOptions): Promise<Worker> {
  const activities = createActivities({
    aws: options.aws,
    bucket: options.bucket,
    temporal: options.client,
    ...options.activityOverrides,
  });
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: shardTaskQueue(options.shard),
    identity: `nstance-worker/${options.workerId}`,
    activities,
    ...(options.workflowBundle ? { workflowBundle: options.workflowBundle } : { workflowsPath: require.resolve('../workflows') }),
    shutdownGraceTime: '10s',
    ...options.tuning,
  });
}

export interface WorkerEnv {
  temporalAddress: string;
  namespace: string;
  shard: string;
  bucket: string;
  workerId: string;
}

export function workerEnv(env: NodeJS.ProcessEnv = process.env): WorkerEnv {
  const missing = ['NSTANCE_SHARD', 'NSTANCE_BUCKET'].filter((name) => !env[name]);
  if (missing.length > 0) {
    throw new Error(`${missing.join(' and ')} must be set: the shard this worker serves and the S3 bucket holding its config`);
  }
  return {
    temporalAddress: env.TEMPORAL_ADDRESS || '127.0.0.1:7233',
    namespace: env.TEMPORAL_NAMESPACE || 'default',
    shard: env.NSTANCE_SHARD as string,
    bucket: env.NSTANCE_BUCKET as string,
    workerId: env.NSTANCE_WORKER_ID || `${hostname()}-${process.pid}`,
  };
}

/**
 * The `nstance worker` process: runs until SIGINT/SIGTERM, then lets in-flight
 * tasks finish (the SDK's graceful shutdown) and closes its connections.
 */
export async function runWorker(env: WorkerEnv, log: (line: string) => void = console.log): Promise<void> {
  const aws = createAwsClients(awsClientOptionsFromEnv());
  const connection = await NativeConnection.connect({ address: env.temporalAddress });
  const clientConnection = await Connection.connect({ address: env.temporalAddress });
  try {
    const client = new Client({ connection: clientConnection, namespace: env.namespace });
    const worker = await createShardWorker({ connection, client, aws, ...env });
    log(`nstance worker ${env.workerId}: shard ${env.shard}, task queue ${shardTaskQueue(env.shard)}, Temporal ${env.temporalAddress}/${env.namespace}, bucket ${env.bucket}`);
    await worker.run();
    log('nstance worker stopped');
  } finally {
    await connection.close();
    await clientConnection.close();
    destroyAwsClients(aws);
  }
}
