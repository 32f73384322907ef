import { hostname } from 'node:os';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../activities';
import { cancellableClients } from '../adapters/aws/cancellation';
import { ACTIVITY_SDK_ATTEMPTS, awsClientOptionsFromEnv, createAwsClients, destroyAwsClients, type AwsClients } from '../adapters/aws/clients';
import { followShardWorkers, ShardEc2Limits } from '../adapters/aws/shard-limits';
import { shardCredentials } from './shard-credentials';
import { shardTaskQueue } from '../common/names';
import { nstanceDataConverter } from '../adapters/temporal/data-converter';
import { clientConnectionOptions, describeTemporalSettings, nativeConnectionOptions, temporalSettingsFromEnv, type TemporalSettings } from '../adapters/temporal/connection-settings';
import type { DataConverter } from '@temporalio/common';
import { agentServices, type AgentApiWorkerOptions } from './agent-api/wiring';
import { installRuntimeWithoutSignalHandlers, LeadershipParticipant, leadershipFromEnv, runWithLeadership, workflowBundleFromEnv } from './leadership/participant';
import { shardWorkerCounter } from './shard-workers';
import { WORKFLOW_INTERCEPTOR_MODULES, WORKFLOW_PRELOAD_MODULES } from './workflow-interceptors';
import { instrumentAwsClients } from '../adapters/metrics/aws-errors';
import { metricsSettingsFromEnv } from './metrics/telemetry';
import { installRuntimeWithMetrics, startWorkerMetrics } from './metrics/wiring';

/** How often a worker counts its shard's workers to size its share of EC2's buckets. */
export const SHARD_WORKERS_REFRESH_MS = 15_000;

export interface ShardWorkerOptions {
  connection: NativeConnection;
  /** Used by activities that start workflows. */
  client: Client;
  namespace: string;
  shard: string;
  bucket: string;
  /**
   * The clients activities use. Give them one SDK attempt (ACTIVITY_SDK_ATTEMPTS): activity retry
   * policies own retrying, so SDK and activity retries never multiply. The worker makes every request
   * of an activity cancellable with it.
   */
  aws: AwsClients;
  /**
   * The clients of the agent API, which is not an activity: nothing retries its requests but the SDK,
   * so they keep the SDK's retries. Defaults to `aws`.
   */
  agentAws?: AwsClients;
  workerId: string;
  /**
   * This worker's share of the shard's EC2 buckets, kept current by counting the shard's workers
   * (default: a new ShardEc2Limits). `activityOverrides.ec2Limits` replaces it altogether.
   */
  ec2Limits?: ShardEc2Limits;
  /** How often the shard's workers are counted (default SHARD_WORKERS_REFRESH_MS). */
  shardWorkersRefreshMs?: number;
  log?: (line: string) => void;
  /** Pre-built bundle (tests share one); otherwise workflows are bundled from source. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  activityOverrides?: Partial<ActivityDeps>;
  /** Extra worker options (shutdown grace, concurrency) for tests and tuning. */
  tuning?: Partial<Pick<WorkerOptions, 'shutdownGraceTime' | 'maxConcurrentActivityTaskExecutions' | 'maxCachedWorkflows' | 'stickyQueueScheduleToStartTimeout'>>;
  /** Serve the agent API from this worker while it runs (implies registrationNonces). */
  agentApi?: AgentApiWorkerOptions;
  /** Put a signed single-use registration nonce in each instance's userdata (creates the cluster CA on first use). */
  registrationNonces?: boolean;
  /** The payload codec and failure converter (default: nstanceDataConverter(), keys from the environment). */
  dataConverter?: DataConverter;
}

export async function createShardWorker(options: ShardWorkerOptions): Promise<Worker> {
  // Throttled and capacity-refused requests are counted for /metrics (adapters/metrics).
  instrumentAwsClients(options.aws);
  if (options.agentAws) instrumentAwsClients(options.agentAws);
  const agents = agentServices({ ...options, aws: options.agentAws ?? options.aws });
  const identity = `nstance-worker/${options.workerId}`;
  const taskQueue = shardTaskQueue(options.shard);
  const refreshMs = options.shardWorkersRefreshMs ?? SHARD_WORKERS_REFRESH_MS;
  const overridden = options.activityOverrides?.ec2Limits !== undefined;
  // A joining worker waits until every peer has counted it (one refresh) before it spends anything.
  const limits = overridden ? undefined : (options.ec2Limits ?? new ShardEc2Limits({ joinGraceMs: refreshMs + 2_000 }));
  const countWorkers = shardWorkerCounter(options.client, options.namespace, taskQueue, identity);
  const activities = createActivities({
    aws: cancellableClients(options.aws),
    bucket: options.bucket,
    temporal: options.client,
    ec2Limits: limits,
    ...agents.activityDeps,
    configs: agents.configs,
    ...options.activityOverrides,
  });
  const worker = await Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue,
    identity,
    activities,
    dataConverter: options.dataConverter ?? nstanceDataConverter(),
    ...(options.workflowBundle
      ? { workflowBundle: options.workflowBundle }
      : {
          workflowsPath: require.resolve('../workflows'),
          interceptors: { workflowModules: WORKFLOW_INTERCEPTOR_MODULES },
          bundlerOptions: { preloadModules: WORKFLOW_PRELOAD_MODULES },
        }),
    shutdownGraceTime: '10s',
    ...options.tuning,
  });
  if (limits) {
    const run = worker.run.bind(worker);
    // Counted before the worker polls: a poller under this identity then can only be a predecessor.
    worker.run = async () => {
      const follower = followShardWorkers(limits, { count: countWorkers, intervalMs: refreshMs, log: options.log });
      await follower.ready;
      try {
        return await run();
      } finally {
        follower.stop();
      }
    };
  }
  return agents.attach(worker);
}

export interface WorkerEnv {
  temporalAddress: string;
  namespace: string;
  /** Address, namespace, TLS/mTLS and API key from envconfig (TEMPORAL_* variables, TEMPORAL_PROFILE). */
  temporal: TemporalSettings;
  shard: string;
  bucket: string;
  workerId: string;
}

export function workerEnv(env: NodeJS.ProcessEnv = process.env): WorkerEnv {
  const missing = ['NSTANCE_SHARD', 'NSTANCE_BUCKET'].filter((name) => !env[name]);
  if (missing.length > 0) {
    throw new Error(`${missing.join(' and ')} must be set: the shard this worker serves and the S3 bucket holding its config`);
  }
  const temporal = temporalSettingsFromEnv(env);
  return {
    temporalAddress: temporal.address,
    namespace: temporal.namespace,
    temporal,
    shard: env.NSTANCE_SHARD as string,
    bucket: env.NSTANCE_BUCKET as string,
    workerId: env.NSTANCE_WORKER_ID || `${hostname()}-${process.pid}`,
  };
}

/** Workflows kept in a worker's sticky cache unless NSTANCE_MAX_CACHED_WORKFLOWS says otherwise. */
const DEFAULT_MAX_CACHED_WORKFLOWS = 300;

/**
 * The `nstance worker` process: runs until SIGINT/SIGTERM, then lets in-flight
 * tasks finish (the SDK's graceful shutdown) and closes its connections.
 */
export async function runWorker(env: WorkerEnv, log: (line: string) => void = console.log): Promise<void> {
  // Leader election (opt-out with NSTANCE_LEADERSHIP=off); the in-process test harness never enables it.
  const leadership = leadershipFromEnv();
  // Core's Prometheus exporter is a Runtime option: installed before any connection, or not at all.
  const metrics = metricsSettingsFromEnv();
  if (metrics) installRuntimeWithMetrics(metrics, { withoutSignalHandlers: leadership !== undefined });
  if (leadership) installRuntimeWithoutSignalHandlers();
  const baseOptions = awsClientOptionsFromEnv();
  // shard.infra.assume_role: every client (activities and agent API) signs with the shard role's credentials.
  const awsOptions = { ...baseOptions, credentials: await shardCredentials(baseOptions, env.bucket, env.shard, log) };
  // Activities: one SDK attempt, the activity retry policies retry. The agent API keeps the SDK's retries.
  const aws = createAwsClients({ ...awsOptions, maxAttempts: ACTIVITY_SDK_ATTEMPTS });
  const agentAws = createAwsClients(awsOptions);
  // Built first: without a payload key (and without NSTANCE_PAYLOAD_CODEC=off) the worker must not start.
  const dataConverter = nstanceDataConverter();
  const connection = await NativeConnection.connect(nativeConnectionOptions(env.temporal));
  const clientConnection = await Connection.connect(clientConnectionOptions(env.temporal));
  try {
    const client = new Client({ connection: clientConnection, namespace: env.namespace, dataConverter });
    const apiPort = Number(process.env.NSTANCE_AGENT_API_PORT || 8443);
    const apiHost = process.env.NSTANCE_AGENT_API_HOST || '0.0.0.0';
    // Candidates announce where agents reach them: the agent API, on this host's name when it listens on every interface.
    const options = leadership ? { ...leadership, agentAddress: leadership.agentAddress ?? `${apiHost === '0.0.0.0' ? hostname() : apiHost}:${apiPort}` } : undefined;
    const participant = options ? new LeadershipParticipant({ connection, client, namespace: env.namespace, shard: env.shard, workerId: env.workerId, options, log }) : undefined;
    await participant?.start();
    const agentApi = { port: apiPort, host: apiHost, log, gate: participant?.gate };
    // A short sticky timeout: a killed leader usually holds the leader workflow in its cache, and its next
    // task (the failover itself) would otherwise wait out the default 10 s before another worker may take it.
    // Not shorter than 2 s: a worker busy with a large group's tasks takes longer than 500 ms to pick up a
    // sticky task, and every such timeout sends the task, with the whole history, to the normal queue.
    const tuning = {
      ...(participant ? { stickyQueueScheduleToStartTimeout: '2s' as const } : {}),
      maxCachedWorkflows: maxCachedWorkflowsFromEnv(),
    };
    const worker = await createShardWorker({ connection, client, aws, agentAws, ...env, dataConverter, agentApi, workflowBundle: workflowBundleFromEnv(), tuning, log });
    log(`nstance worker ${env.workerId}: shard ${env.shard}, task queue ${shardTaskQueue(env.shard)}, Temporal ${describeTemporalSettings(env.temporal)}, bucket ${env.bucket}`);
    const metricsServer = metrics ? await startWorkerMetrics({ settings: metrics, client, shard: env.shard, gate: participant?.gate, log }) : undefined;
    try {
      await (participant ? runWithLeadership(worker, participant, log) : worker.run());
    } finally {
      await metricsServer?.close();
    }
    log('nstance worker stopped');
  } finally {
    await connection.close();
    await clientConnection.close();
    destroyAwsClients(aws);
    destroyAwsClients(agentAws);
  }
}

/**
 * Each cached workflow holds its isolate state (about 0.8 MB measured for a busy instance
 * workflow), so the SDK's default (sized from the heap) lets a worker of a 2,000-instance group
 * grow past a gigabyte. An evicted workflow is replayed on its next task: cheap for instance
 * workflows, whose histories are short and continue as new.
 */
function maxCachedWorkflowsFromEnv(): number {
  const raw = process.env.NSTANCE_MAX_CACHED_WORKFLOWS;
  if (raw === undefined || raw === '') return DEFAULT_MAX_CACHED_WORKFLOWS;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`NSTANCE_MAX_CACHED_WORKFLOWS must be a positive integer, got "${raw}"`);
  return value;
}
