/**
 * An agent API served the way a shard worker serves it (agentServices: one config cache,
 * one PKI cache, the nonce issuer and the API sharing them), but attached to a worker that
 * runs only the stand-in instance workflow on a private task queue, so registrations can
 * be driven at scale without launching anything. Used by bench/agent-api.ts and by
 * test/integration/agent-api-scale.test.ts.
 *
 * Nonces are minted by the issuer itself (ActivityDeps.issueRegistrationNonce, the launch
 * activity's seam), that is with the cluster's registration key, exactly as a launch does.
 */
import type { Client } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { AwsClients } from '../../adapters/aws/clients';
import type { LaunchAttempt, RegistrationMaterial } from '../../activities/deps';
import { ShardConfigStore } from '../../adapters/s3/config-store';
import { ObjectStore } from '../../adapters/s3/objects';
import { instanceWorkflowId } from '../../common/names';
import type { InstanceWorkflowInput } from '../../common/types';
import type { SeedResult } from '../../scripts/seed-emulator';
import { configText, testConfig } from '../../test/support/fixtures';
import type { AgentApi, AgentApiListenOptions } from '../../workers/agent-api/server';
import { agentServices, type AgentServices } from '../../workers/agent-api/wiring';
import { nstanceDataConverter } from '../../adapters/temporal/data-converter';

/** Well-formed ids for what the config names but the agent API never touches (no EC2 here). */
const PLACEHOLDERS: SeedResult = {
  region: 'us-east-1',
  zone: 'us-east-1a',
  vpcId: 'vpc-0a0a0a0a0a0a0a0a0',
  subnetIds: ['subnet-0a0a0a0a0a0a0a0a0', 'subnet-0b0b0b0b0b0b0b0b0'],
  securityGroupId: 'sg-0a0a0a0a0a0a0a0a0',
  instanceProfileName: 'nstance-stand',
  instanceProfileArn: 'arn:aws:iam::123456789012:instance-profile/nstance-stand',
  bucket: '',
  imageId: 'ami-0a0a0a0a0a0a0a0a0',
  leaderInterfaceId: 'eni-0a0a0a0a0a0a0a0a0',
  serverInstanceId: 'i-0a0a0a0a0a0a0a0a0',
  leaderIp: '10.0.1.10',
  targetGroupArn: 'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/stand/0a0a0a0a0a0a0a0a',
};

export interface StandOptions {
  client: Client;
  temporalAddress: string;
  aws: AwsClients;
  bucket: string;
  shard: string;
  /** The shard's health_check_interval (default 60s). */
  healthInterval?: string;
  /** Agent API options (limits, TTLs); port 0 on 127.0.0.1 unless given. */
  api?: Partial<AgentApiListenOptions>;
  log?: (line: string) => void;
  /** The web template's `files` and the config's `certificates` (none by default). */
  templateFiles?: { files: Record<string, unknown>; certificates?: Record<string, unknown> };
}

export interface Stand {
  api: AgentApi;
  services: AgentServices;
  /** host:port the agents dial. */
  address: string;
  taskQueue: string;
  /** The launch activity's seam: the nonce (and CA) a launch of `instanceId` would put in userdata. */
  mintNonce(instanceId: string): Promise<RegistrationMaterial>;
  /** Starts stand-in instance workflows under these instance ids, `concurrency` at a time. */
  startInstances(instanceIds: string[], concurrency?: number): Promise<void>;
  /** Stops the API and its worker; terminates the stand-ins unless told not to (a benchmark drops its whole server). */
  stop(options?: { terminate?: boolean }): Promise<void>;
}

export function standConfigText(shard: string, bucket: string, healthInterval = '60s', templateFiles?: StandOptions['templateFiles']): string {
  const config = testConfig({ ...PLACEHOLDERS, bucket }, { shard, bucket, size: 0, reconcileInterval: healthInterval }) as Record<string, unknown> & { templates: { web: Record<string, unknown> } };
  if (templateFiles) {
    config.templates.web.files = templateFiles.files;
    config.certificates = templateFiles.certificates;
  }
  return configText(config);
}

/** What the nonce issuer reads of a launch: which instance, of which group, and its first scheduled time. */
function launchOf(shard: string, instanceId: string): { input: InstanceWorkflowInput; launch: LaunchAttempt } {
  const input = { shard, tenant: 'default', group: 'web', clusterId: 'test', instanceId, groupWorkflowId: `nstance:${shard}:group:default/web` } as InstanceWorkflowInput;
  return { input, launch: { workflowId: instanceWorkflowId(shard, instanceId), issuedAtMs: Date.now() } };
}

export async function startStand(options: StandOptions): Promise<Stand> {
  const { client, aws, bucket, shard } = options;
  const objects = new ObjectStore({ s3: aws.s3, bucket });
  await new ShardConfigStore(objects, shard).writeConfig(standConfigText(shard, bucket, options.healthInterval, options.templateFiles), { absent: true });
  let ready: (api: AgentApi) => void = () => undefined;
  let failed: (err: Error) => void = () => undefined;
  const started = new Promise<AgentApi>((resolve, reject) => {
    ready = resolve;
    failed = reject;
  });
  const log = options.log ?? (() => undefined);
  const services = agentServices({
    client,
    aws,
    bucket,
    shard,
    workerId: `stand-${process.pid}`,
    agentApi: {
      port: 0,
      host: '127.0.0.1',
      ...options.api,
      onReady: (api) => ready(api),
      log: (line) => {
        log(line);
        if (line.startsWith('agent API failed to start')) failed(new Error(line));
      },
    },
  });
  const taskQueue = `nstance-stand.${shard}`;
  const connection = await NativeConnection.connect({ address: options.temporalAddress });
  const worker = services.attach(
    await Worker.create({ connection, taskQueue, dataConverter: nstanceDataConverter(), workflowsPath: require.resolve('./standin-workflow'), maxCachedWorkflows: 200 }),
  );
  const running = worker.run();
  running.catch((err: Error) => failed(err));
  const api = await started;
  const port = api.address?.port;
  if (!port) throw new Error('agent API is not listening');
  const issue = services.activityDeps.issueRegistrationNonce;
  if (!issue) throw new Error('agentServices gave no nonce issuer');
  const standIns: string[] = [];

  return {
    api,
    services,
    address: `127.0.0.1:${port}`,
    taskQueue,
    mintNonce: (instanceId) => {
      const { input, launch } = launchOf(shard, instanceId);
      return issue(input, launch);
    },
    async startInstances(instanceIds, concurrency = 50) {
      let next = 0;
      const lane = async () => {
        while (next < instanceIds.length) {
          const id = instanceIds[next++] as string;
          await client.workflow.start('instanceStandIn', { taskQueue, workflowId: instanceWorkflowId(shard, id), args: [] });
          standIns.push(id);
        }
      };
      await Promise.all(Array.from({ length: concurrency }, lane));
    },
    async stop({ terminate = true } = {}) {
      if (terminate) {
        for (const id of standIns) await client.workflow.getHandle(instanceWorkflowId(shard, id)).terminate('stand stopped').catch(() => undefined);
      }
      worker.shutdown();
      await running.catch(() => undefined);
      await connection.close();
    },
  };
}
