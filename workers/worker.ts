import { hostname } from 'node:os';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../activities';
import { awsClientOptionsFromEnv, createAwsClients, destroyAwsClients, type AwsClients } from '../activities/aws/clients';
import { shardTaskQueue } from '../common/names';
import { agentServices, type AgentApiWorkerOptions } from './agent-api/wiring';
import { installRuntimeWithoutSignalHandlers, LeadershipParticipant, leadershipFromEnv, runWithLeadership, workflowBundleFromEnv } from './leadership/participant';

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
  tuning?: Partial<Pick<WorkerOptions, 'shutdownGraceTime' | 'maxConcurrentActivityTaskExecutions' | 'maxCachedWorkflows' | 'stickyQueueScheduleToStartTimeout'>>;
  /** Serve the agent API from this worker while it runs (implies registrationNonces). */
  agentApi?: AgentApiWorkerOptions;
  /** Put a signed single-use registration nonce in each instance's userdata (creates the cluster CA on first use). */
  registrationNonces?: boolean;
}

export async function createShardWorker(options: ShardWorkerOptions): Promise<Worker> {
  const agents = agentServices(options);
  const activities = createActivities({
    aws: options.aws,
    bucket: options.bucket,
    temporal: options.client,
    ...agents.activityDeps,
    ...options.activityOverrides,
  });
  const worker = await Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: shardTaskQueue(options.shard),
    identity: `nstance-worker/${options.workerId}`,
    activities,
    ...(options.workflowBundle ? { workflowBundle: options.workflowBundle } : { workflowsPath: require.resolve('../workflows') }),
    shutdownGraceTime: '10s',
    ...options.tuning,
  });
  return agents.attach(worker);
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
  // Leader election (opt-out with NSTANCE_LEADERSHIP=off); the in-process test harness never enables it.
  const leadership = leadershipFromEnv();
  if (leadership) installRuntimeWithoutSignalHandlers();
  const aws = createAwsClients(awsClientOptionsFromEnv());
  const connection = await NativeConnection.connect({ address: env.temporalAddress });
  const clientConnection = await Connection.connect({ address: env.temporalAddress });
  try {
    const client = new Client({ connection: clientConnection, namespace: env.namespace });
    const apiPort = Number(process.env.NSTANCE_AGENT_API_PORT || 8443);
    const apiHost = process.env.NSTANCE_AGENT_API_HOST || '0.0.0.0';
    // Candidates announce where agents reach them: the agent API, on this host's name when it listens on every interface.
    const options = leadership ? { ...leadership, agentAddress: leadership.agentAddress ?? `${apiHost === '0.0.0.0' ? hostname() : apiHost}:${apiPort}` } : undefined;
    const participant = options ? new LeadershipParticipant({ connection, client, namespace: env.namespace, shard: env.shard, workerId: env.workerId, options, log }) : undefined;
    await participant?.start();
    const agentApi = { port: apiPort, host: apiHost, log, gate: participant?.gate };
    // A short sticky timeout: a killed leader usually holds the leader workflow in its cache, and its next
    // task (the failover itself) would otherwise wait out the default 10 s before another worker may take it.
    const tuning = participant ? { stickyQueueScheduleToStartTimeout: '500ms' as const } : undefined;
    const worker = await createShardWorker({ connection, client, aws, ...env, agentApi, workflowBundle: workflowBundleFromEnv(), tuning });
    log(`nstance worker ${env.workerId}: shard ${env.shard}, task queue ${shardTaskQueue(env.shard)}, Temporal ${env.temporalAddress}/${env.namespace}, bucket ${env.bucket}`);
    await (participant ? runWithLeadership(worker, participant, log) : worker.run());
    log('nstance worker stopped');
  } finally {
    await connection.close();
    await clientConnection.close();
    destroyAwsClients(aws);
  }
}
