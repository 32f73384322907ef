/**
 * The least-privilege IAM policy a shard config needs: every action the worker (activities, agent API,
 * leadership) calls, scoped to the config's bucket prefixes, secret prefix, region, subnets, leader ENI,
 * target groups and instance profile roles, with tag conditions on what EC2 lets us condition. Pure: the
 * same config always gives the same document (the CLI prints it; the IAM proof in the integration tests
 * evaluates every recorded AWS call against it; `nstance plan` takes `iamRequirements` as its seam).
 */
import { s3Keys } from '../names';
import { argLayers, ec2Requirements } from './ec2-statements';
import { storageFileKeys } from './file-sources';
import type { NstanceConfig } from '../config/schema';
import { isPlainObject } from '../config/fields';
import { secretsPrefix, type EncryptionKeySource, type SecretsConfig } from '../config/secrets';

const CA_CERT_KEY = s3Keys.caCert();

export type ConditionBlock = Record<string, Record<string, string | string[]>>;

export interface PolicyStatement {
  Sid: string;
  Effect: 'Allow' | 'Deny';
  Action: string[];
  Resource: string[];
  Condition?: ConditionBlock;
}

export interface PolicyDocument {
  Version: '2012-10-17';
  Statement: PolicyStatement[];
}

/** A statement with why it is there; `unscoped`: the actions accept no resource ARN, so only the region bounds them. */
export interface Requirement extends PolicyStatement {
  why: string;
  unscoped?: boolean;
}

export interface IamOptions {
  /** The account the shard's resources live in. Default: the target groups' account, else any ("*"). */
  account?: string;
  partition?: string;
  /**
   * Role names behind each instance profile the config passes (IamInstanceProfile Arn or Name). Default: a
   * role of the profile's own name, the usual convention; `nstance iam policy` asks IAM when it can.
   */
  instanceProfileRoles?: Record<string, string[]>;
}

/** The account of the config's target groups when they all agree (the config names no account elsewhere). */
export function accountOf(config: NstanceConfig, options: IamOptions = {}): string {
  if (options.account) return options.account;
  const accounts = new Set(Object.values(config.load_balancers).flatMap((lb) => lb.target_groups.map((tg) => tg.arn.split(':')[4])));
  return accounts.size === 1 ? [...accounts][0] : '*';
}

/** Instance profile references (ARN or name) in defaults, templates and groups args. */
export function instanceProfiles(config: NstanceConfig): string[] {
  const found = new Set<string>();
  for (const args of argLayers(config)) {
    if (!isPlainObject(args) || !isPlainObject(args.IamInstanceProfile)) continue;
    const profile = args.IamInstanceProfile;
    const ref = typeof profile.Arn === 'string' ? profile.Arn : typeof profile.Name === 'string' ? profile.Name : undefined;
    if (ref) found.add(ref);
  }
  return [...found].sort();
}

/** The profile's name, from an ARN (`…:instance-profile/path/name`) or a bare name. */
export function profileName(ref: string): string {
  return ref.startsWith('arn:') ? (ref.split('/').pop() ?? ref) : ref;
}

/** The configured store, its resolved prefix (the default Nstance on Temporal derives), and every key it reads. */
function secretStore(config: NstanceConfig): { provider: SecretsConfig['provider']; prefix: string; keys: EncryptionKeySource[] } {
  const secrets = config.cluster.secrets;
  const keys = [...(secrets.encryption_key ? [secrets.encryption_key] : []), ...(secrets.old_encryption_keys ?? [])];
  return { provider: secrets.provider, prefix: secretsPrefix(secrets), keys };
}

/** SSM parameter ARNs name the parameter without its leading "/". */
function parameterArn(base: string, name: string): string {
  return `${base}:parameter/${name.replace(/^\//, '')}`;
}

/**
 * What a config needs of IAM, statement by statement, each with why. The worker's policy is these
 * statements (without `why`); `unscoped` ones are also listed apart by the CLI.
 */
export function iamRequirements(config: NstanceConfig, options: IamOptions = {}): Requirement[] {
  const partition = options.partition ?? 'aws';
  const region = config.shard.infra.region;
  const account = accountOf(config, options);
  const ec2 = `arn:${partition}:ec2:${region}:${account}`;
  const inRegion: ConditionBlock = { StringEquals: { 'aws:RequestedRegion': region } };
  const bucket = config.cluster.storage.bucket;
  const shard = config.shard.id;
  const out: Requirement[] = [];

  const storageRegion: ConditionBlock = { StringEquals: { 'aws:RequestedRegion': config.cluster.storage.region ?? region } };
  const store = secretStore(config);
  // Under cluster/, only the CA certificate, and the object-storage provider's secrets under its own prefix.
  const clusterObjects = store.provider === 'object-storage' ? [CA_CERT_KEY, `cluster/${store.prefix}*`] : [CA_CERT_KEY];
  out.push({
    Sid: 'ConfigStateAndAudit',
    Effect: 'Allow',
    Action: ['s3:GetObject', 's3:PutObject'],
    Resource: [...clusterObjects.map((key) => `arn:${partition}:s3:::${bucket}/${key}`), `arn:${partition}:s3:::${bucket}/shard/${shard}/*`],
    Condition: storageRegion,
    why: `config, dynamic groups, leader record, nonces, certificate log, instance records and audit under shard/${shard}/; the CA certificate${store.provider === 'object-storage' ? ` and object-storage secrets (cluster/${store.prefix})` : ''} under cluster/`,
  });
  const fileKeys = storageFileKeys(config);
  if (fileKeys.length > 0) {
    out.push({
      Sid: 'StorageFiles',
      Effect: 'Allow',
      Action: ['s3:GetObject'],
      Resource: fileKeys.map((key) => `arn:${partition}:s3:::${bucket}/${key}`),
      Condition: storageRegion,
      why: `the templates' storage files (${fileKeys.join(', ')})${fileKeys.includes('*') ? '; a source that begins with a template can name any key of the bucket' : ''}`,
    });
  }
  out.push({
    Sid: 'ShardRecordsExpire',
    Effect: 'Allow',
    Action: ['s3:DeleteObject'],
    Resource: [`arn:${partition}:s3:::${bucket}/shard/${shard}/*`],
    Condition: storageRegion,
    why: `garbage collection deletes instance records past their retention under shard/${shard}/instance/`,
  });
  out.push({
    Sid: 'ListOwnPrefixes',
    Effect: 'Allow',
    Action: ['s3:ListBucket'],
    Resource: [`arn:${partition}:s3:::${bucket}`],
    Condition: { ...storageRegion, StringLike: { 's3:prefix': [...(store.provider === 'object-storage' ? [`cluster/${store.prefix}*`] : []), `shard/${shard}/*`] } },
    why: `instance records (shard/${shard}/instance/)${store.provider === 'object-storage' ? `, and object-storage secrets and key rotation (cluster/${store.prefix})` : ''}; listings of any other prefix are refused`,
  });

  if (store.provider === 'aws-secrets-manager') {
    const secretArn = (name: string) => `arn:${partition}:secretsmanager:${region}:${account}:secret:${name}`;
    out.push({
      Sid: 'SecretsUnderPrefix',
      Effect: 'Allow',
      Action: ['secretsmanager:GetSecretValue', 'secretsmanager:CreateSecret'],
      Resource: [secretArn(`${store.prefix}*`)],
      Condition: inRegion,
      why: `the CA and registration keys and agents' secret files, all named under "${store.prefix}"`,
    });
    out.push({
      Sid: 'SecretsList',
      Effect: 'Allow',
      Action: ['secretsmanager:ListSecrets'],
      Resource: ['*'],
      Condition: inRegion,
      unscoped: true,
      why: 'ListSecrets accepts no resource ARN; the agent API filters the names by the prefix (and a list returns names, never values)',
    });
  }
  if (store.provider === 'aws-parameter-store') {
    const base = `arn:${partition}:ssm:${region}:${account}`;
    out.push({
      Sid: 'ParametersUnderPrefix',
      Effect: 'Allow',
      Action: ['ssm:GetParameter', 'ssm:PutParameter'],
      Resource: [parameterArn(base, `${store.prefix}*`)],
      Condition: inRegion,
      why: `secrets kept as SecureString parameters under "${store.prefix}" (PutParameter without Overwrite: created once, race-safe)`,
    });
    out.push({
      Sid: 'ParametersList',
      Effect: 'Allow',
      Action: ['ssm:DescribeParameters'],
      Resource: ['*'],
      Condition: inRegion,
      unscoped: true,
      why: 'DescribeParameters accepts no resource ARN; the store filters by the prefix (a listing returns names, never values)',
    });
  }
  // Keys kept in AWS (the object-storage provider's encryption_key and old keys): read, each by its own name.
  const keyArns = store.keys.flatMap((key) => {
    if (key.provider === 'aws-secrets-manager') return [{ action: 'secretsmanager:GetSecretValue', arn: `arn:${partition}:secretsmanager:${region}:${account}:secret:${key.source}-*` }];
    if (key.provider === 'aws-parameter-store') return [{ action: 'ssm:GetParameter', arn: parameterArn(`arn:${partition}:ssm:${region}:${account}`, key.source) }];
    return [];
  });
  for (const action of [...new Set(keyArns.map((k) => k.action))]) {
    out.push({
      Sid: action === 'ssm:GetParameter' ? 'EncryptionKeyParameters' : 'EncryptionKeySecrets',
      Effect: 'Allow',
      Action: [action],
      Resource: [...new Set(keyArns.filter((k) => k.action === action).map((k) => k.arn))].sort(),
      Condition: inRegion,
      why: 'cluster.secrets.encryption_key and old_encryption_keys: read to encrypt and decrypt object-storage secrets (a SecureString under the account\'s aws/ssm key needs no KMS grant)',
    });
  }

  out.push(...ec2Requirements(config, { ec2, partition, region, inRegion }));

  const targetGroups = [...new Set(Object.values(config.load_balancers).flatMap((lb) => lb.target_groups.map((tg) => tg.arn)))].sort();
  if (targetGroups.length > 0) {
    out.push({
      Sid: 'ConfiguredTargetGroups',
      Effect: 'Allow',
      Action: ['elasticloadbalancing:RegisterTargets', 'elasticloadbalancing:DeregisterTargets'],
      Resource: targetGroups,
      Condition: inRegion,
      why: "the config's target groups only",
    });
    out.push({
      Sid: 'TargetHealth',
      Effect: 'Allow',
      Action: ['elasticloadbalancing:DescribeTargetHealth'],
      Resource: ['*'],
      Condition: inRegion,
      unscoped: true,
      why: 'DescribeTargetHealth accepts no resource ARN',
    });
  }

  const profiles = instanceProfiles(config);
  if (profiles.length > 0) {
    const roles = new Set<string>();
    for (const ref of profiles) for (const role of options.instanceProfileRoles?.[ref] ?? [profileName(ref)]) roles.add(role);
    out.push({
      Sid: 'PassInstanceProfileRoles',
      Effect: 'Allow',
      Action: ['iam:PassRole'],
      Resource: [...roles].sort().map((role) => (role.startsWith('arn:') ? role : `arn:${partition}:iam::${account}:role/${role}`)),
      Condition: { StringEquals: { 'iam:PassedToService': 'ec2.amazonaws.com' } },
      why: `the roles of the instance profiles the config launches with (${profiles.map(profileName).join(', ')})`,
    });
  }
  return out;
}

/** The worker's policy document: the requirements without their explanations. */
export function workerPolicy(config: NstanceConfig, options: IamOptions = {}): PolicyDocument {
  return { Version: '2012-10-17', Statement: iamRequirements(config, options).map(({ why: _why, unscoped: _unscoped, ...statement }) => statement) };
}

/** Every IAM action a config needs, sorted (the seam `nstance plan` shows). */
export function iamActions(config: NstanceConfig, options: IamOptions = {}): string[] {
  return [...new Set(iamRequirements(config, options).flatMap((r) => r.Action))].sort();
}
