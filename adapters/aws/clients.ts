import { EC2Client } from '@aws-sdk/client-ec2';
import { S3Client } from '@aws-sdk/client-s3';
import { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { SSMClient } from '@aws-sdk/client-ssm';

/**
 * The AWS clients every activity receives. They are injected (never constructed
 * inside an activity) so tests can point them at the emulator or wrap them in a
 * fault-injecting layer.
 */
export interface AwsClients {
  ec2: EC2Client;
  s3: S3Client;
  elbv2: ElasticLoadBalancingV2Client;
  secrets: SecretsManagerClient;
  /** Parameter Store: cluster.secrets.provider "aws-parameter-store" and encryption keys kept there. */
  ssm: SSMClient;
}

export interface AwsClientOptions {
  region: string;
  /** Custom endpoint (the emulator). Unset means the real AWS endpoints. */
  endpoint?: string;
  /**
   * SDK-level attempts per call (default 3). Activity clients use 1 (ACTIVITY_SDK_ATTEMPTS): the
   * activity's retry policy owns retrying, so the two never multiply.
   */
  maxAttempts?: number;
  /** Credentials for every client (e.g. assumeRoleCredentials for shard.infra.assume_role); unset: the SDK's default chain. */
  credentials?: AwsCredentialIdentityProvider;
}

/** One SDK attempt per request made by an activity: Temporal's retry policy retries the activity. */
export const ACTIVITY_SDK_ATTEMPTS = 1;

export function awsClientOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): AwsClientOptions {
  const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  if (!region) throw new Error('AWS_REGION is not set: set it to the region of the shard (for example us-east-1)');
  return { region, endpoint: env.AWS_ENDPOINT_URL || undefined };
}

export function createAwsClients(options: AwsClientOptions): AwsClients {
  // The SDK warns on every process that releases after January 2027 will need Node 22. The
  // versions here are pinned by the lockfile and run on Node 20; the notice would only
  // bury our own output (CLI, worker logs). Set the variable to "false" to see it again.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const common = {
    region: options.region,
    endpoint: options.endpoint,
    maxAttempts: options.maxAttempts ?? 3,
    ...(options.credentials ? { credentials: options.credentials } : {}),
  };
  return {
    ec2: new EC2Client(common),
    // Path-style addressing: an emulator on loopback has no per-bucket host names.
    s3: new S3Client({ ...common, forcePathStyle: options.endpoint !== undefined }),
    elbv2: new ElasticLoadBalancingV2Client(common),
    secrets: new SecretsManagerClient(common),
    ssm: new SSMClient(common),
  };
}

export function destroyAwsClients(clients: AwsClients): void {
  clients.ec2.destroy();
  clients.s3.destroy();
  clients.elbv2.destroy();
  clients.secrets.destroy();
  clients.ssm.destroy();
}
