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
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import {
  CreateNetworkInterfaceCommand,
  CreateSecurityGroupCommand,
  CreateSubnetCommand,
  CreateVpcCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeNetworkInterfacesCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  DescribeVpcsCommand,
  RunInstancesCommand,
  EC2Client,
  type Image,
  type ResourceType,
  type TagSpecification,
} from '@aws-sdk/client-ec2';
import {
  CreateTargetGroupCommand,
  DescribeTargetGroupsCommand,
  ElasticLoadBalancingV2Client,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import {
  AddRoleToInstanceProfileCommand,
  CreateInstanceProfileCommand,
  CreateRoleCommand,
  GetInstanceProfileCommand,
  GetRoleCommand,
  IAMClient,
  type InstanceProfile,
} from '@aws-sdk/client-iam';
import { CreateBucketCommand, HeadBucketCommand, S3Client, type BucketLocationConstraint } from '@aws-sdk/client-s3';
import { CreateSecretCommand, DescribeSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { applyEdits, findNodeAtLocation, modify, parseTree, type JSONPath, type Node } from 'jsonc-parser';
import { createAwsClients, destroyAwsClients } from '../activities/aws/clients';

/** What the example config refers to; names match the example so the demo reads naturally. */
export const SEED_DEFAULTS = {
  name: 'nstance-demo',
  bucket: 'nstance-demo',
  vpcCidr: '10.0.0.0/16',
  subnetCidrs: ['10.0.1.0/24', '10.0.2.0/24'] as const,
  leaderIp: '10.0.1.10',
  instanceProfileName: 'nstance-agent',
  targetGroupName: 'web',
  targetGroupPort: 443,
  imageNamePattern: 'al2023-ami-2023.*-arm64',
  imageArchitecture: 'arm64',
  encryptionKeySecretId: 'nstance/demo/encryption-key',
} as const;

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

function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`emulator response has no ${what}`);
  return value;
}

function nameTag(resourceType: ResourceType, name: string): TagSpecification[] {
  return [{ ResourceType: resourceType, Tags: [{ Key: 'Name', Value: name }] }];
}

/** The SDK v3 error name (e.g. "NoSuchEntity"), whatever the service's exception class. */
function errorName(err: unknown): string | undefined {
  return err instanceof Error ? err.name : undefined;
}

// The worker's own host: untagged for nstance (the garbage collector must never see it).
async function ensureServerInstance(ec2: EC2Client, subnetId: string, securityGroupId: string, imageId: string, name: string): Promise<string> {
  const found = await ec2.send(
    new DescribeInstancesCommand({
      Filters: [
        { Name: 'tag:Name', Values: [name] },
        { Name: 'instance-state-name', Values: ['pending', 'running'] },
      ],
    }),
  );
  const existing = found.Reservations?.[0]?.Instances?.[0]?.InstanceId;
  if (existing) return existing;
  const created = await ec2.send(
    new RunInstancesCommand({
      ImageId: imageId,
      InstanceType: 'm7g.large',
      SubnetId: subnetId,
      SecurityGroupIds: [securityGroupId],
      MinCount: 1,
      MaxCount: 1,
      TagSpecifications: nameTag('instance', name),
    }),
  );
  return required(created.Instances?.[0]?.InstanceId, 'server instance id');
}

async function ensureVpc(ec2: EC2Client, name: string): Promise<string> {
  const found = await ec2.send(
    new DescribeVpcsCommand({
      Filters: [
        { Name: 'tag:Name', Values: [name] },
        { Name: 'cidr', Values: [SEED_DEFAULTS.vpcCidr] },
      ],
    }),
  );
  const existing = found.Vpcs?.[0]?.VpcId;
  if (existing) return existing;
  const created = await ec2.send(
    new CreateVpcCommand({ CidrBlock: SEED_DEFAULTS.vpcCidr, TagSpecifications: nameTag('vpc', name) }),
  );
  return required(created.Vpc?.VpcId, 'VPC id');
}

// Subnets are keyed by CIDR within the VPC: EC2 itself refuses a second subnet with
// the same CIDR, so that key cannot drift from what actually exists.
async function ensureSubnet(ec2: EC2Client, vpcId: string, zone: string, cidr: string, name: string): Promise<string> {
  const found = await ec2.send(
    new DescribeSubnetsCommand({
      Filters: [
        { Name: 'vpc-id', Values: [vpcId] },
        { Name: 'cidr-block', Values: [cidr] },
      ],
    }),
  );
  const existing = found.Subnets?.[0];
  if (existing?.SubnetId) {
    if (existing.AvailabilityZone !== zone) {
      throw new Error(`subnet ${existing.SubnetId} (${cidr}) is in ${existing.AvailabilityZone}, not ${zone}`);
    }
    return existing.SubnetId;
  }
  const created = await ec2.send(
    new CreateSubnetCommand({
      VpcId: vpcId,
      CidrBlock: cidr,
      AvailabilityZone: zone,
      TagSpecifications: nameTag('subnet', name),
    }),
  );
  return required(created.Subnet?.SubnetId, 'subnet id');
}

async function ensureSecurityGroup(ec2: EC2Client, vpcId: string, groupName: string): Promise<string> {
  const found = await ec2.send(
    new DescribeSecurityGroupsCommand({
      Filters: [
        { Name: 'vpc-id', Values: [vpcId] },
        { Name: 'group-name', Values: [groupName] },
      ],
    }),
  );
  const existing = found.SecurityGroups?.[0]?.GroupId;
  if (existing) return existing;
  const created = await ec2.send(
    new CreateSecurityGroupCommand({
      VpcId: vpcId,
      GroupName: groupName,
      Description: 'Nstance demo: instances and workers',
      TagSpecifications: nameTag('security-group', groupName),
    }),
  );
  return required(created.GroupId, 'security group id');
}

// Keyed by the fixed private IP in the subnet: the example's leader_network.ip must be
// this ENI's address, and a second ENI cannot take the same address anyway.
async function ensureLeaderInterface(
  ec2: EC2Client,
  subnetId: string,
  securityGroupId: string,
  name: string,
): Promise<string> {
  const found = await ec2.send(
    new DescribeNetworkInterfacesCommand({ Filters: [{ Name: 'subnet-id', Values: [subnetId] }] }),
  );
  const existing = found.NetworkInterfaces?.find((eni) => eni.PrivateIpAddress === SEED_DEFAULTS.leaderIp);
  if (existing?.NetworkInterfaceId) return existing.NetworkInterfaceId;
  const created = await ec2.send(
    new CreateNetworkInterfaceCommand({
      SubnetId: subnetId,
      PrivateIpAddress: SEED_DEFAULTS.leaderIp,
      Groups: [securityGroupId],
      Description: 'Nstance leader network: follows the shard leader',
      TagSpecifications: nameTag('network-interface', name),
    }),
  );
  return required(created.NetworkInterface?.NetworkInterfaceId, 'network interface id');
}

// moto's RunInstances rejects an IamInstanceProfile that does not exist, so the
// profile the example's defaults name must be real; the role makes it a usual one.
async function ensureInstanceProfile(iam: IAMClient, name: string): Promise<InstanceProfile> {
  await ensureRole(iam, name);
  let profile: InstanceProfile;
  try {
    profile = required((await iam.send(new GetInstanceProfileCommand({ InstanceProfileName: name }))).InstanceProfile, 'instance profile');
  } catch (err) {
    if (errorName(err) !== 'NoSuchEntityException' && errorName(err) !== 'NoSuchEntity') throw err;
    profile = required(
      (await iam.send(new CreateInstanceProfileCommand({ InstanceProfileName: name }))).InstanceProfile,
      'instance profile',
    );
  }
  if (!profile.Roles?.some((role) => role.RoleName === name)) {
    await iam.send(new AddRoleToInstanceProfileCommand({ InstanceProfileName: name, RoleName: name }));
  }
  return profile;
}

async function ensureRole(iam: IAMClient, name: string): Promise<void> {
  try {
    await iam.send(new GetRoleCommand({ RoleName: name }));
    return;
  } catch (err) {
    if (errorName(err) !== 'NoSuchEntityException' && errorName(err) !== 'NoSuchEntity') throw err;
  }
  await iam.send(
    new CreateRoleCommand({
      RoleName: name,
      Description: 'Nstance agent on each managed instance',
      AssumeRolePolicyDocument: JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }],
      }),
    }),
  );
}

async function ensureBucket(s3: S3Client, bucket: string, region: string): Promise<void> {
  try {
    await s3.send(new HeadBucketCommand({ Bucket: bucket }));
    return;
  } catch (err) {
    // HeadBucket has no body, so a missing bucket surfaces only as a 404 ("NotFound").
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (errorName(err) !== 'NotFound' && status !== 404) throw err;
  }
  await s3.send(
    new CreateBucketCommand({
      Bucket: bucket,
      // us-east-1 is the one region that rejects an explicit LocationConstraint.
      ...(region === 'us-east-1'
        ? {}
        : { CreateBucketConfiguration: { LocationConstraint: region as BucketLocationConstraint } }),
    }),
  );
}

// moto ships Amazon's current AL2023 images (owner alias "amazon") in every region it
// knows, and its API cannot make an arm64 image from nothing, so this only looks.
async function findImage(ec2: EC2Client): Promise<string> {
  const found = await ec2.send(
    new DescribeImagesCommand({
      Owners: ['amazon'],
      Filters: [
        { Name: 'name', Values: [SEED_DEFAULTS.imageNamePattern] },
        { Name: 'architecture', Values: [SEED_DEFAULTS.imageArchitecture] },
      ],
    }),
  );
  const newest = [...(found.Images ?? [])].sort(byCreationDateDesc)[0]?.ImageId;
  if (!newest) {
    throw new Error(
      `the emulator has no Amazon image named ${SEED_DEFAULTS.imageNamePattern} (${SEED_DEFAULTS.imageArchitecture}); ` +
        'moto loads them by default: unset MOTO_EC2_LOAD_DEFAULT_AMIS / MOTO_AMIS_PATH, or use a region moto has images for',
    );
  }
  return newest;
}

function byCreationDateDesc(a: Image, b: Image): number {
  return (b.CreationDate ?? '').localeCompare(a.CreationDate ?? '');
}

function defaultTargetGroupName(name: string): string {
  if (name === SEED_DEFAULTS.name) return SEED_DEFAULTS.targetGroupName;
  // ELBv2 allows 32 characters of [A-Za-z0-9-], not starting or ending with "-".
  const prefix = name.replace(/[^A-Za-z0-9-]/g, '-').slice(0, 32 - 4).replace(/^-+|-+$/g, '');
  return prefix ? `${prefix}-${SEED_DEFAULTS.targetGroupName}` : SEED_DEFAULTS.targetGroupName;
}

async function ensureTargetGroup(elbv2: ElasticLoadBalancingV2Client, vpcId: string, name: string): Promise<string> {
  try {
    const found = await elbv2.send(new DescribeTargetGroupsCommand({ Names: [name] }));
    const existing = found.TargetGroups?.[0];
    if (existing?.TargetGroupArn) {
      if (existing.VpcId !== vpcId) {
        throw new Error(`target group ${name} exists in ${existing.VpcId}, not in the seeded VPC ${vpcId}`);
      }
      return existing.TargetGroupArn;
    }
  } catch (err) {
    if (errorName(err) !== 'TargetGroupNotFoundException' && errorName(err) !== 'TargetGroupNotFound') throw err;
  }
  const created = await elbv2.send(
    new CreateTargetGroupCommand({
      Name: name,
      Protocol: 'TCP',
      Port: SEED_DEFAULTS.targetGroupPort,
      VpcId: vpcId,
      TargetType: 'instance',
    }),
  );
  return required(created.TargetGroups?.[0]?.TargetGroupArn, 'target group ARN');
}

async function ensureSecret(secrets: SecretsManagerClient, secretId: string): Promise<string> {
  try {
    return required((await secrets.send(new DescribeSecretCommand({ SecretId: secretId }))).ARN, 'secret ARN');
  } catch (err) {
    if (errorName(err) !== 'ResourceNotFoundException') throw err;
  }
  const created = await secrets.send(
    new CreateSecretCommand({
      Name: secretId,
      Description: 'Nstance demo: AES-256-GCM key of the Temporal payload codec (base64)',
      SecretString: randomBytes(32).toString('base64'),
    }),
  );
  return required(created.ARN, 'secret ARN');
}

/**
 * The example config with its placeholder ids replaced by the seeded ones. Only the
 * values at known paths change (jsonc-parser edits), so comments and layout survive.
 */
export function renderSeededConfig(exampleText: string, seed: SeedResult): string {
  const root = parseTree(exampleText, [], { allowTrailingComma: true });
  if (!root) throw new Error('example config is not JSONC');
  const edits: Array<[JSONPath, string]> = [
    [['cluster', 'storage', 'bucket'], seed.bucket],
    [['cluster', 'storage', 'region'], seed.region],
    [['shard', 'infra', 'region'], seed.region],
    [['shard', 'infra', 'zone'], seed.zone],
    [['shard', 'leader_network', 'interface_id'], seed.leaderInterfaceId],
    [['shard', 'leader_network', 'ip'], seed.leaderIp],
    [['shard', 'subnet_pools', 'private', 0], seed.subnetIds[0]],
    [['shard', 'subnet_pools', 'private', 1], seed.subnetIds[1]],
    [['defaults', 'args', 'SecurityGroupIds', 0], seed.securityGroupId],
    [['defaults', 'args', 'IamInstanceProfile', 'Arn'], seed.instanceProfileArn],
    ...targetGroupArnPaths(root).map((p): [JSONPath, string] => [p, seed.targetGroupArn]),
  ];
  let text = exampleText;
  for (const [jsonPath, value] of edits) {
    // modify() would insert a missing path; a renamed field must fail loudly instead.
    if (!findNodeAtLocation(root, jsonPath)) {
      throw new Error(`example config has no ${jsonPath.join('.')}; update scripts/seed-emulator.ts`);
    }
    text = applyEdits(text, modify(text, jsonPath, value, {}));
  }
  return text;
}

/** Every load balancer's target group ARN: the emulator has one NLB target group. */
function targetGroupArnPaths(root: Node): JSONPath[] {
  const paths: JSONPath[] = [];
  for (const lb of findNodeAtLocation(root, ['load_balancers'])?.children ?? []) {
    const key = lb.children?.[0]?.value as string | undefined;
    if (key === undefined) continue;
    const groups = findNodeAtLocation(root, ['load_balancers', key, 'target_groups'])?.children ?? [];
    groups.forEach((_, index) => paths.push(['load_balancers', key, 'target_groups', index, 'arn']));
  }
  if (paths.length === 0) throw new Error('example config has no load_balancers.*.target_groups[].arn');
  return paths;
}

/** Repo root: the nearest directory above this file with a package.json (works from dist/ too). */
function repoRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${__dirname}`);
  }
}

const EXAMPLE = path.join('examples', 'config.example.jsonc');

// The example normally sits beside the repo (../shared/examples); checkouts elsewhere
// (a CI clone, a container) find it by walking up, or are told via env or --example.
function findExample(root: string): string {
  const fromEnv = process.env.NSTANCE_EXAMPLE_CONFIG;
  if (fromEnv) return fromEnv;
  for (let dir = root; ; dir = path.dirname(dir)) {
    for (const candidate of [path.join(dir, 'shared', EXAMPLE), path.join(dir, EXAMPLE)]) {
      if (fs.existsSync(candidate)) return candidate;
    }
    if (path.dirname(dir) === dir) break;
  }
  throw new Error(`cannot find shared/${EXAMPLE} above ${root}; pass --example PATH or set NSTANCE_EXAMPLE_CONFIG`);
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
  const examplePath = path.resolve(args.example ?? findExample(root));
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
