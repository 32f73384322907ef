import { IAMClient } from '@aws-sdk/client-iam';
import type { Client } from '@temporalio/client';
import { seedEmulator, type SeedResult } from '../../scripts/seed-emulator';
import { stackEnv } from './stack-env';
import type { Harness } from './harness';

/** Creates, in the emulator, the VPC, subnets, AMI etc. a test shard's config refers to. */
export async function seedShard(h: Harness): Promise<SeedResult> {
  const env = stackEnv();
  const iam = new IAMClient({ region: env.region, endpoint: env.awsEndpoint });
  try {
    return await seedEmulator({ ec2: h.aws.ec2, s3: h.aws.s3, elbv2: h.aws.elbv2, iam, bucket: h.bucket, name: h.shard });
  } finally {
    iam.destroy();
  }
}

export interface TestConfigOptions {
  shard: string;
  bucket: string;
  size: number;
  /** Extra groups beyond default/web. */
  groups?: Record<string, Record<string, { template: string; size: number }>>;
  reconcileInterval?: string;
  /** Merged over the shard section (e.g. garbage_collection, expiry). */
  shardSettings?: Record<string, unknown>;
  /** Merged over default/web (e.g. load_balancers, drain_timeout). */
  web?: Record<string, unknown>;
  /** cluster.secrets (default: Secrets Manager under nstance/<shard>/). */
  secrets?: Record<string, unknown>;
}

/** A complete shard config in Nstance's schema, pointing at seeded resources, with test-friendly intervals. */
export function testConfig(seed: SeedResult, options: TestConfigOptions): Record<string, unknown> {
  return {
    cluster: {
      id: 'test',
      storage: { provider: 's3', bucket: options.bucket, region: seed.region },
      secrets: options.secrets ?? { provider: 'aws-secrets-manager', prefix: `nstance/${options.shard}/` },
    },
    shard: {
      id: options.shard,
      infra: { provider: 'aws', region: seed.region, zone: seed.zone },
      leader_network: { interface_id: seed.leaderInterfaceId, ip: seed.leaderIp },
      subnet_pools: { private: seed.subnetIds },
      health_check_interval: options.reconcileInterval ?? '3s',
      default_drain_timeout: '30s',
      image_refresh_interval: '6h',
      create_rate_limit: '10ms',
      garbage_collection: { interval: '2m', registration_timeout: '5m' },
      ...(options.shardSettings ?? {}),
    },
    images: {
      al2023arm: {
        owners: ['amazon'],
        filters: [
          { name: 'name', values: ['al2023-ami-2023.*-arm64'] },
          { name: 'architecture', values: ['arm64'] },
        ],
        sort: 'creation-date',
        order: 'desc',
        fallback: [seed.imageId],
      },
    },
    load_balancers: { web: { provider: 'aws', target_groups: [{ arn: seed.targetGroupArn, target_port: 443 }] } },
    defaults: {
      args: {
        SecurityGroupIds: [seed.securityGroupId],
        IamInstanceProfile: { Arn: seed.instanceProfileArn },
      },
      vars: { Environment: 'test' },
    },
    templates: {
      web: {
        kind: 'web',
        arch: 'arm64',
        instance_type: 'm7g.large',
        subnet_pool: 'private',
        args: { ImageId: '{{ .Image.al2023arm }}' },
        userdata: { content: '#!/bin/bash\necho {{ .Instance.ID }} {{ .Server.RegistrationAddr }} {{ .Vars.Environment }}\n' },
      },
    },
    groups: { default: { web: { template: 'web', size: options.size, ...(options.web ?? {}) } }, ...(options.groups ?? {}) },
  };
}

/** Userdata an agent boots from (client/agent/fleet.ts reads it): the CA, the registration address and a nonce (valid for registration_timeout). */
export const AGENT_USERDATA =
  "#!/bin/bash\nmkdir -p /etc/nstance && cat > /etc/nstance/ca.crt <<'CA'\n{{ .Server.CACert }}\nCA\n/opt/nstance/agent --register {{ .Server.RegistrationAddr }} --nonce {{ .Nonce }}\n";

export function configText(config: Record<string, unknown>): string {
  return `// test config\n${JSON.stringify(config, null, 2)}\n`;
}

/** Terminates every workflow of a shard, so nothing keeps running after a test file. */
export async function terminateShardWorkflows(client: Client, shard: string): Promise<void> {
  const query = `ExecutionStatus = 'Running' AND NstanceShard = '${shard}'`;
  for await (const wf of client.workflow.list({ query })) {
    await client.workflow.getHandle(wf.workflowId).terminate('test finished').catch(() => undefined);
  }
}
