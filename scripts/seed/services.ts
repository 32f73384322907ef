/** IAM, S3, ELBv2 and Secrets Manager resources the example config refers to. */
import { randomBytes } from 'crypto';
import {
  CreateTargetGroupCommand,
  DescribeTargetGroupsCommand,
  type ElasticLoadBalancingV2Client,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import {
  AddRoleToInstanceProfileCommand,
  CreateInstanceProfileCommand,
  CreateRoleCommand,
  GetInstanceProfileCommand,
  GetRoleCommand,
  type IAMClient,
  type InstanceProfile,
} from '@aws-sdk/client-iam';
import { CreateBucketCommand, HeadBucketCommand, type S3Client, type BucketLocationConstraint } from '@aws-sdk/client-s3';
import { CreateSecretCommand, DescribeSecretCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SEED_DEFAULTS } from './defaults';
import { errorName, isAwsError, required } from './util';

/**
 * Get-or-create, safe when two seeds run at once (test files seed in parallel and share the one
 * profile): whoever loses a create or the role's add re-reads what the winner made.
 */
export async function ensureInstanceProfile(iam: IAMClient, name: string): Promise<InstanceProfile> {
  await ensureRole(iam, name);
  let profile = await getInstanceProfile(iam, name);
  if (!profile) {
    try {
      profile = required((await iam.send(new CreateInstanceProfileCommand({ InstanceProfileName: name }))).InstanceProfile, 'instance profile');
    } catch (err) {
      if (!isAwsError(err, 'EntityAlreadyExists')) throw err;
      profile = required(await getInstanceProfile(iam, name), 'instance profile');
    }
  }
  if (profile.Roles?.some((role) => role.RoleName === name)) return profile;
  try {
    await iam.send(new AddRoleToInstanceProfileCommand({ InstanceProfileName: name, RoleName: name }));
  } catch (err) {
    // A profile holds one role: another seed added it first.
    if (!isAwsError(err, 'LimitExceeded')) throw err;
    const current = required(await getInstanceProfile(iam, name), 'instance profile');
    if (!current.Roles?.some((role) => role.RoleName === name)) throw err;
  }
  return profile;
}

async function getInstanceProfile(iam: IAMClient, name: string): Promise<InstanceProfile | undefined> {
  try {
    return required((await iam.send(new GetInstanceProfileCommand({ InstanceProfileName: name }))).InstanceProfile, 'instance profile');
  } catch (err) {
    if (!isAwsError(err, 'NoSuchEntity')) throw err;
    return undefined;
  }
}

async function ensureRole(iam: IAMClient, name: string): Promise<void> {
  try {
    await iam.send(new GetRoleCommand({ RoleName: name }));
    return;
  } catch (err) {
    if (!isAwsError(err, 'NoSuchEntity')) throw err;
  }
  try {
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
  } catch (err) {
    if (!isAwsError(err, 'EntityAlreadyExists')) throw err;
  }
}

export async function ensureBucket(s3: S3Client, bucket: string, region: string): Promise<void> {
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

export function defaultTargetGroupName(name: string): string {
  if (name === SEED_DEFAULTS.name) return SEED_DEFAULTS.targetGroupName;
  // ELBv2 allows 32 characters of [A-Za-z0-9-], not starting or ending with "-".
  const prefix = name.replace(/[^A-Za-z0-9-]/g, '-').slice(0, 32 - 4).replace(/^-+|-+$/g, '');
  return prefix ? `${prefix}-${SEED_DEFAULTS.targetGroupName}` : SEED_DEFAULTS.targetGroupName;
}

export async function ensureTargetGroup(elbv2: ElasticLoadBalancingV2Client, vpcId: string, name: string): Promise<string> {
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
    if (!isAwsError(err, 'TargetGroupNotFound')) throw err;
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

export async function ensureSecret(secrets: SecretsManagerClient, secretId: string): Promise<string> {
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
