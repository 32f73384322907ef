/**
 * The other documents `nstance iam policy` prints beside the worker's policy: the worker role's trust
 * policy, the agent's (empty) policy and its role's trust, and, for a shard that assumes a role in another
 * account, both sides of that arrangement.
 */
import type { NstanceConfig } from '../config/schema';
import { s3Keys } from '../names';
import { accountOf, iamRequirements, type IamOptions, type PolicyDocument, type PolicyStatement, type Requirement } from './policy';

export interface TrustStatement {
  Sid: string;
  Effect: 'Allow';
  Principal: { Service: string } | { AWS: string };
  Action: string[];
  Condition?: Record<string, Record<string, string>>;
}

export interface TrustPolicy {
  Version: '2012-10-17';
  Statement: TrustStatement[];
}

/** Workers run on EC2: their role is assumed by the EC2 service through the instance profile. */
export function workerTrustPolicy(): TrustPolicy {
  return { Version: '2012-10-17', Statement: [{ Sid: 'WorkersOnEc2', Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: ['sts:AssumeRole'] }] };
}

/**
 * The agent calls no AWS API: it reads IMDS and talks to the agent API over mTLS, which hands it its
 * files and secrets. Its instance profile needs no permission at all.
 */
export function agentPolicy(): PolicyDocument {
  return { Version: '2012-10-17', Statement: [] };
}

export interface CrossAccountDocuments {
  /** Attach to the role in the shard's account (shard.infra.assume_role.role_arn). */
  roleTrustPolicy: TrustPolicy;
  /** The role's permissions: the worker policy, in the shard's account, and `config apply`'s zone check (run as the role). */
  rolePolicy: PolicyDocument;
  /** Attach to the operator's identity (the worker's own role). */
  operatorPolicy: PolicyDocument;
  /** The bucket's side: its account, and the bucket policy it needs (none when one account holds all). */
  bucket: BucketSide;
}

export interface BucketPolicyStatement extends PolicyStatement {
  Principal: { AWS: string };
}

export interface BucketSide {
  bucket: string;
  /** The account the bucket is taken to be in (OPERATOR_ACCOUNT_ID when only known as the operator's). */
  account: string;
  /** Why this side, and why a policy is (or is not) needed. */
  why: string;
  /** Put on the bucket; absent when the identity policies suffice (bucket and caller in one account). */
  policy?: { Version: '2012-10-17'; Statement: BucketPolicyStatement[] };
}

export interface CrossAccountOptions extends IamOptions {
  /** The identity that assumes the role (the operator's worker role ARN). Default: the operator account's root, to be narrowed. */
  operatorPrincipal?: string;
  /** The account that owns cluster.storage.bucket. Default: the operator's (a cluster's bucket serves every shard). */
  bucketAccount?: string;
}

const accountOfArn = (arn: string): string | undefined => (/^arn:[^:]+:iam::(\d{12}):/.exec(arn) ?? /^(\d{12})$/.exec(arn))?.[1];

/**
 * The bucket's side of assume_role. The worker's S3 calls sign as the shard's role; the operator's identity
 * reads the shard's config before assuming it, and `config apply` writes it. The bucket is the cluster's,
 * shared by every shard, so by default it is taken to be in the operator's account: then the role (in the
 * shard's account) reaches it across accounts, and the bucket policy must grant the role the worker's S3
 * statements as well. A bucket in the role's account (`bucketAccount`) instead grants the operator what it
 * reads and writes with its own credentials. One account for all needs no bucket policy.
 */
function bucketSide(config: NstanceConfig, rolePolicy: PolicyDocument, operatorS3: PolicyStatement[], operator: string, options: CrossAccountOptions): BucketSide {
  const bucket = config.cluster.storage.bucket;
  const role = config.shard.infra.assume_role?.role_arn as string;
  const roleAccount = accountOfArn(role) as string;
  const operatorAccount = accountOfArn(operator);
  const account = options.bucketAccount ?? operatorAccount ?? 'OPERATOR_ACCOUNT_ID';
  const grant = (principal: string, statements: PolicyStatement[], prefix: string): BucketSide['policy'] => ({
    Version: '2012-10-17',
    Statement: statements.map((s) => ({ ...s, Sid: `${prefix}${s.Sid}`, Principal: { AWS: principal } })),
  });
  const s3Of = (statements: PolicyStatement[]) => statements.filter((s) => s.Action.every((a) => a.startsWith('s3:')));
  if (account === roleAccount && operatorAccount === roleAccount) {
    return { bucket, account, why: `the bucket, the shard's role and the operator are all in account ${account}: the identity policies suffice, no bucket policy is needed` };
  }
  if (account === roleAccount) {
    return {
      bucket,
      account,
      why: `the bucket is in the shard role's account (${account}), so the role's own policy covers the worker's S3 calls; the operator reads the shard's config and \`config apply\` writes it with the operator's own credentials, across accounts: the bucket policy grants those`,
      policy: grant(operator, operatorS3, 'Operator'),
    };
  }
  return {
    bucket,
    account,
    why: `the bucket is the cluster's, in the operator's account${options.bucketAccount ? ` (${account})` : ' (pass --bucket-account if it is elsewhere)'}, and the worker's S3 calls sign as the shard's role (account ${roleAccount}): across accounts, S3 needs both the role's policy and this bucket policy granting the role the same prefixes`,
    policy: grant(role, s3Of(rolePolicy.Statement), 'ShardRole'),
  };
}

/**
 * Both sides of `shard.infra.assume_role`: the role trusts the operator's identity only with the
 * ExternalId; the operator may assume only that role, and reads its shard's config (to learn which role)
 * with its own credentials before it does.
 */
export function crossAccountDocuments(config: NstanceConfig, options: CrossAccountOptions = {}): CrossAccountDocuments | undefined {
  const assume = config.shard.infra.assume_role;
  if (!assume) return undefined;
  const partition = options.partition ?? 'aws';
  const roleAccount = assume.role_arn.split(':')[4];
  const operator = options.operatorPrincipal ?? 'arn:aws:iam::OPERATOR_ACCOUNT_ID:root';
  // The region too: for a role in the operator's own account the trust alone lets the named principal in.
  const condition = { StringEquals: { ...(assume.external_id ? { 'sts:ExternalId': assume.external_id } : {}), 'aws:RequestedRegion': config.shard.infra.region } };
  const bucket = config.cluster.storage.bucket;
  const rolePolicy: PolicyDocument = {
    Version: '2012-10-17',
    // `config apply`'s zone check runs as the role (zone names map per account, so only the shard's account can
    // resolve them); the worker never calls DescribeAvailabilityZones, and its Ec2Describe has DescribeSubnets already.
    Statement: [...iamRequirements(config, { ...options, account: options.account ?? roleAccount }).map(({ why: _w, unscoped: _u, ...s }) => s), zoneCheckStatement(config, ['ec2:DescribeAvailabilityZones'])],
  };
  const readConfig: PolicyStatement = {
    Sid: 'ReadShardConfigBeforeAssuming',
    Effect: 'Allow',
    Action: ['s3:GetObject'],
    Resource: [`arn:${partition}:s3:::${bucket}/${s3Keys.config(config.shard.id)}`],
  };
  const applyObjects = cliPolicy(config, options).Statement.filter((st) => st.Action.every((a) => a.startsWith('s3:')));
  return {
    roleTrustPolicy: {
      Version: '2012-10-17',
      Statement: [{ Sid: 'NstanceOperator', Effect: 'Allow', Principal: { AWS: operator }, Action: ['sts:AssumeRole'], Condition: condition }],
    },
    rolePolicy,
    operatorPolicy: { Version: '2012-10-17', Statement: [assumeShardRoleStatement(config, 'AssumeShardRole'), readConfig] },
    bucket: bucketSide(config, rolePolicy, [readConfig, ...applyObjects], operator, options),
  };
}

/**
 * What `nstance config apply` itself calls (the operator's, not the worker's): it reads and writes the
 * shard's config, dynamic groups and audit entry, and checks the shard's zone (DescribeAvailabilityZones,
 * DescribeSubnets). With assume_role the zone check runs as the shard's role (the zone and subnets are
 * in its account), so that statement is the role's (crossAccountDocuments) and the operator may assume it.
 */
export function cliPolicy(config: NstanceConfig, options: IamOptions = {}): PolicyDocument {
  const partition = options.partition ?? 'aws';
  const shard = config.shard.id;
  const object = (key: string) => `arn:${partition}:s3:::${config.cluster.storage.bucket}/${key}`;
  const assume = config.shard.infra.assume_role;
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'ConfigApplyObjects',
        Effect: 'Allow',
        Action: ['s3:GetObject', 's3:PutObject'],
        Resource: [object(s3Keys.config(shard)), object(s3Keys.groups(shard)), object(`${s3Keys.auditPrefix(shard)}*`)],
        Condition: { StringEquals: { 'aws:RequestedRegion': config.cluster.storage.region ?? config.shard.infra.region } },
      },
      assume ? assumeShardRoleStatement(config, 'ConfigApplyAssumeShardRole') : zoneCheckStatement(config),
    ],
  };
}

/**
 * sts:AssumeRole on the shard's role only, through STS in the shard's region: the worker and `config apply`
 * ask the regional endpoint of shard.infra.region (adapters/aws/assume-role.ts), so aws:RequestedRegion is
 * that region (the global endpoint would be us-east-1's, and is refused unless the shard is there).
 */
function assumeShardRoleStatement(config: NstanceConfig, sid: string): PolicyStatement {
  const role = config.shard.infra.assume_role?.role_arn as string;
  return { Sid: sid, Effect: 'Allow', Action: ['sts:AssumeRole'], Resource: [role], Condition: { StringEquals: { 'aws:RequestedRegion': config.shard.infra.region } } };
}

/** `config apply`'s zone check: the zone (name or AZ ID) and the pools' subnets, read in the shard's region. */
function zoneCheckStatement(config: NstanceConfig, actions = ['ec2:DescribeAvailabilityZones', 'ec2:DescribeSubnets']): PolicyStatement {
  return {
    Sid: 'ConfigApplyZoneCheck',
    Effect: 'Allow',
    Action: actions,
    Resource: ['*'],
    Condition: { StringEquals: { 'aws:RequestedRegion': config.shard.infra.region } },
  };
}

/** Everything `nstance iam policy` shows, as one object (its --json output). */
export interface IamReport {
  account: string;
  region: string;
  workerPolicy: PolicyDocument;
  workerTrustPolicy: TrustPolicy;
  /** What the operator running `nstance config apply` needs (never the worker's). */
  cliPolicy: PolicyDocument;
  /** Actions that accept no resource ARN, with why (they are in workerPolicy too, bounded to the region). */
  unscoped: { actions: string[]; why: string }[];
  agentPolicy?: PolicyDocument;
  agentTrustPolicy?: TrustPolicy;
  crossAccount?: CrossAccountDocuments;
  notes: string[];
}

export function iamReport(config: NstanceConfig, options: CrossAccountOptions & { agent?: boolean; crossAccount?: boolean } = {}): IamReport {
  const requirements: Requirement[] = iamRequirements(config, options);
  const account = accountOf(config, options);
  const notes: string[] = [];
  if (account === '*') notes.push('no account could be read from the config (no target group ARN): ARNs use "*" for the account; pass --account');
  if (requirements.some((r) => r.Sid === 'PassInstanceProfileRoles') && !options.instanceProfileRoles) {
    notes.push("iam:PassRole assumes each instance profile's role has the profile's name; with --resolve-roles the CLI asks IAM (iam:GetInstanceProfile)");
  }
  if (requirements.some((r) => r.Sid === 'LaunchSpotRequests')) {
    notes.push('spot launches need the service-linked role AWSServiceRoleForEC2Spot in the account (created once by an administrator: iam create-service-linked-role --aws-service-name spot.amazonaws.com); the worker is not granted iam:CreateServiceLinkedRole');
  }
  if (requirements.some((r) => r.Sid === 'LeaderNetworkWorkers')) notes.push('worker instances must carry the tag nstance:cluster-id for the leader ENI to be attached to them');
  const report: IamReport = {
    account,
    region: config.shard.infra.region,
    workerPolicy: { Version: '2012-10-17', Statement: requirements.map(({ why: _w, unscoped: _u, ...s }) => s) },
    workerTrustPolicy: workerTrustPolicy(),
    cliPolicy: cliPolicy(config, options),
    unscoped: requirements.filter((r) => r.unscoped).map((r) => ({ actions: r.Action, why: r.why })),
    notes,
  };
  if (options.agent) {
    report.agentPolicy = agentPolicy();
    report.agentTrustPolicy = workerTrustPolicy();
  }
  if (options.crossAccount) {
    const docs = crossAccountDocuments(config, options);
    if (!docs) notes.push('--cross-account: shard.infra.assume_role is not set, so the worker uses its own credentials');
    else report.crossAccount = docs;
  }
  return report;
}
