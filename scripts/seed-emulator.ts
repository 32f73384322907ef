/**
 * Creates in the AWS emulator (moto) everything the example config refers to, and
 * writes a copy of the example whose placeholder ids are the emulator's real ones.
 *
 *   node dist/scripts/seed-emulator.js [--example PATH] [--out PATH] [--bucket NAME]
 *
 * Env: AWS_ENDPOINT_URL (required: this never talks to real AWS), AWS_REGION
 * (default us-east-1), AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (default "test").
 *
 * Every step looks up before it creates, so running it again against the same
 * emulator changes nothing. Integration tests call seedEmulator() in-process.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { IAMClient } from '@aws-sdk/client-iam';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { createAwsClients, destroyAwsClients } from '../adapters/aws/clients';
import { SEED_DEFAULTS } from './seed/defaults';
import { ensureLeaderInterface, ensureSecurityGroup, ensureServerInstance, ensureSubnet, ensureVpc, findImage } from './seed/ec2';
import { renderSeededConfig } from './seed/render-config';
import { defaultTargetGroupName, ensureBucket, ensureInstanceProfile, ensureSecret, ensureTargetGroup } from './seed/services';
import { required } from './seed/util';
import { findExampleConfig } from './seed/example-config';

export { SEED_DEFAULTS, renderSeededConfig };

export interface SeedOptions {
  ec2: EC2Client;
  s3: S3Client;
  elbv2: ElasticLoadBalancingV2Client;
  iam: IAMClient;
  /** When given, the payload-codec key secret is created too (32 random bytes, base64). */
  secrets?: SecretsManagerClient;
  /** Default "nstance-demo". */
  bucket?: string;
  /** Availability zone of both subnets; default "<region>a". */
  zone?: string;
  /** Name tag prefix of the VPC, subnets, security group and ENI; default "nstance-demo". */
  name?: string;
  /**
   * Target group names are unique per region, unlike the tagged VPC resources, so
   * seeds with different `name`s (one per test shard) need different ones. Default:
   * "web" for the default name, else "<name>-web".
   */
  targetGroupName?: string;
  /** Default "nstance/demo/encryption-key" (the example's cluster.secrets.encryption_key.source). */
  encryptionKeySecretId?: string;
}

export interface SeedResult {
  region: string;
  zone: string;
  vpcId: string;
  /** The `private` subnet pool, in CIDR order (10.0.1.0/24, 10.0.2.0/24). */
  subnetIds: [string, string];
  securityGroupId: string;
  instanceProfileName: string;
  instanceProfileArn: string;
  bucket: string;
  /** Newest image matching the example's al2023 arm64 filter (moto ships Amazon's). */
  imageId: string;
  leaderInterfaceId: string;
  /** An instance standing for the machine the worker runs on (the leader ENI is attached to it). Not nstance-managed. */
  serverInstanceId: string;
  leaderIp: string;
  targetGroupArn: string;
  /** Set when a secrets client was given. */
  encryptionKeySecretArn?: string;
}

export async function seedEmulator(options: SeedOptions): Promise<SeedResult> {
  const { ec2, s3, elbv2, iam } = options;
  const region = await ec2.config.region();
  const zone = options.zone ?? `${region}a`;
  const name = options.name ?? SEED_DEFAULTS.name;
  const bucket = options.bucket ?? SEED_DEFAULTS.bucket;

  const vpcId = await ensureVpc(ec2, name);
  const subnetIds: [string, string] = [
    await ensureSubnet(ec2, vpcId, zone, SEED_DEFAULTS.subnetCidrs[0], `${name}-private-1`),
    await ensureSubnet(ec2, vpcId, zone, SEED_DEFAULTS.subnetCidrs[1], `${name}-private-2`),
  ];
  const securityGroupId = await ensureSecurityGroup(ec2, vpcId, `${name}-workers`);
  const leaderInterfaceId = await ensureLeaderInterface(ec2, subnetIds[0], securityGroupId, `${name}-leader`);
  const instanceProfile = await ensureInstanceProfile(iam, SEED_DEFAULTS.instanceProfileName);
  await ensureBucket(s3, bucket, region);
  const imageId = await findImage(ec2);
  const targetGroupArn = await ensureTargetGroup(elbv2, vpcId, options.targetGroupName ?? defaultTargetGroupName(name));
  const serverInstanceId = await ensureServerInstance(ec2, subnetIds[0], securityGroupId, imageId, `${name}-server`);
  const encryptionKeySecretArn = options.secrets
    ? await ensureSecret(options.secrets, options.encryptionKeySecretId ?? SEED_DEFAULTS.encryptionKeySecretId)
    : undefined;

  return {
    region,
    zone,
    vpcId,
    subnetIds,
    securityGroupId,
    instanceProfileName: SEED_DEFAULTS.instanceProfileName,
    instanceProfileArn: required(instanceProfile.Arn, 'instance profile ARN'),
    bucket,
    imageId,
    leaderInterfaceId,
    leaderIp: SEED_DEFAULTS.leaderIp,
    targetGroupArn,
    serverInstanceId,
    ...(encryptionKeySecretArn !== undefined ? { encryptionKeySecretArn } : {}),
  };
}

function repoRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${__dirname}`);
  }
}

interface CliArgs {
  example?: string;
  out?: string;
  bucket?: string;
}

function parseArgs(argv: string[]): CliArgs {
  const args: CliArgs = {};
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (flag !== '--example' && flag !== '--out' && flag !== '--bucket') {
      throw new Error(`unknown argument ${flag}; usage: seed-emulator [--example PATH] [--out PATH] [--bucket NAME]`);
    }
    if (value === undefined) throw new Error(`${flag} needs a value`);
    args[flag.slice(2) as keyof CliArgs] = value;
    i++;
  }
  return args;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const endpoint = process.env.AWS_ENDPOINT_URL;
  // Seeding creates VPCs and buckets: refuse to do that anywhere but an emulator.
  if (!endpoint) throw new Error('AWS_ENDPOINT_URL is not set: point it at the emulator (e.g. http://127.0.0.1:4566)');
  if (/amazonaws\.com/i.test(endpoint)) throw new Error(`AWS_ENDPOINT_URL=${endpoint} is real AWS; seeding is for the emulator only`);
  const region = process.env.AWS_REGION || 'us-east-1';
  process.env.AWS_ACCESS_KEY_ID ||= 'test';
  process.env.AWS_SECRET_ACCESS_KEY ||= 'test';

  const root = repoRoot();
  const examplePath = path.resolve(args.example ?? findExampleConfig(root));
  const outPath = path.resolve(args.out ?? path.join(root, '.stack', 'config.jsonc'));
  const exampleText = fs.readFileSync(examplePath, 'utf8');

  const clients = createAwsClients({ region, endpoint });
  const iam = new IAMClient({ region, endpoint });
  try {
    const seed = await seedEmulator({ ...clients, iam, ...(args.bucket ? { bucket: args.bucket } : {}) });
    fs.mkdirSync(path.dirname(outPath), { recursive: true });
    fs.writeFileSync(outPath, renderSeededConfig(exampleText, seed));
    // The demo's worker announces this as its EC2 instance, so the leader ENI has somewhere to go.
    fs.writeFileSync(path.join(path.dirname(outPath), 'server-instance-id'), `${seed.serverInstanceId}\n`);
    console.log(`seeded ${endpoint} (${region}):`);
    console.log(`  vpc ${seed.vpcId}, subnets ${seed.subnetIds.join(' ')}, security group ${seed.securityGroupId}`);
    console.log(`  leader ENI ${seed.leaderInterfaceId} (${seed.leaderIp}), image ${seed.imageId}, worker host ${seed.serverInstanceId}`);
    console.log(`  bucket ${seed.bucket}, target group ${seed.targetGroupArn}`);
    console.log(`  instance profile ${seed.instanceProfileArn}, codec key secret ${seed.encryptionKeySecretArn ?? '-'}`);
    console.log(`wrote ${outPath} (from ${examplePath})`);
  } finally {
    destroyAwsClients(clients);
    iam.destroy();
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(`seed-emulator: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}

