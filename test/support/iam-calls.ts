/**
 * What IAM authorises for one AWS SDK call: its action(s), the resource ARNs it touches and the request and
 * resource tags it carries, as AWS evaluates them (RunInstances, for example, is authorised on the instance,
 * volume and network interface it creates with the request's tags, on the subnet, security groups and
 * image it uses, and as ec2:CreateTags for its TagSpecifications). The fault layer records these for
 * every call; the IAM proof (iam-proof.ts) evaluates them against the generated policy.
 */
import { TAG } from '../../common/names';

export interface AuthRequest {
  action: string;
  resource: string;
  /** Condition keys: aws:RequestTag/K, aws:TagKeys, aws:ResourceTag/K, ec2:CreateAction, aws:RequestedRegion… */
  context: Record<string, string | string[]>;
}

export interface ArnScope {
  region: string;
  account: string;
  partition?: string;
}

/** What the fault layer learnt from earlier answers: tags of instances and ENIs, and which ENI and instance an attachment joins. */
export interface ResourceFacts {
  tagsOf(resourceId: string): Record<string, string> | undefined;
  attachment(attachmentId: string): { interfaceId?: string; instanceId?: string } | undefined;
}

/** Calls the project never makes: the tests' own seeding and the simulated fleet's stand-in for IMDS. */
export const NOT_PROJECT_CALLS = new Set([
  'CreateBucket',
  'HeadBucket',
  'CreateVpc',
  'CreateSubnet',
  'CreateSecurityGroup',
  'CreateNetworkInterface',
  'CreateTargetGroup',
  'CreateRole',
  'CreateInstanceProfile',
  'AddRoleToInstanceProfile',
  'GetInstanceProfile',
  'GetRole',
  'DescribeVpcs',
  'DescribeSecurityGroups',
  'DescribeTargetGroups',
  'DescribeInstanceAttribute',
  'DescribeSecret',
  'AssumeRole',
  'GetCallerIdentity',
  // Tests stop an instance to play one lost behind the project's back; the project never stops one.
  'StopInstances',
]);

/** The project's launches always carry its tags (buildRunInstancesInput); a launch without them is a test's stand-in for another tool. */
function isProjectLaunch(input: Input): boolean {
  const specs = (input.TagSpecifications as { Tags?: { Key?: string }[] }[] | undefined) ?? [];
  return specs.some((s) => (s.Tags ?? []).some((t) => t.Key === TAG.instanceId));
}

type Input = Record<string, unknown>;

const SERVICE_OF: Record<string, string> = {
  GetObject: 's3',
  PutObject: 's3',
  HeadObject: 's3',
  DeleteObject: 's3',
  ListObjectsV2: 's3',
  GetSecretValue: 'secretsmanager',
  CreateSecret: 'secretsmanager',
  PutSecretValue: 'secretsmanager',
  ListSecrets: 'secretsmanager',
  DeleteSecret: 'secretsmanager',
  DescribeParameters: 'ssm',
  DeleteParameter: 'ssm',
  DeleteObjects: 's3',
  GetParameter: 'ssm',
  GetParameters: 'ssm',
  GetParametersByPath: 'ssm',
  PutParameter: 'ssm',
  RegisterTargets: 'elasticloadbalancing',
  DeregisterTargets: 'elasticloadbalancing',
  DescribeTargetHealth: 'elasticloadbalancing',
};

function tagContext(prefix: 'aws:RequestTag' | 'aws:ResourceTag', tags: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(tags ?? {}).map(([k, v]) => [`${prefix}/${k}`, v]));
}

/** Tags a request sets (TagSpecifications of one resource type, or CreateTags' Tags). */
function requestTags(list: unknown): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const t of (list as { Key?: string; Value?: string }[] | undefined) ?? []) if (t.Key) tags[t.Key] = t.Value ?? '';
  return tags;
}

function ec2Arn(scope: ArnScope, id: string): string {
  const base = `arn:${scope.partition ?? 'aws'}:ec2:${scope.region}:${scope.account}`;
  const type = id.startsWith('i-') ? 'instance' : id.startsWith('eni-') ? 'network-interface' : id.startsWith('vol-') ? 'volume' : id.startsWith('subnet-') ? 'subnet' : id.startsWith('sg-') ? 'security-group' : 'instance';
  return `${base}:${type}/${id}`;
}

/** A secret's ARN as IAM sees it: its name and AWS's six-character suffix. */
function secretArn(scope: ArnScope, id: string): string {
  return id.startsWith('arn:') ? id : `arn:${scope.partition ?? 'aws'}:secretsmanager:${scope.region}:${scope.account}:secret:${id}-AbCdEf`;
}

function parameterArn(scope: ArnScope, name: string): string {
  return `arn:${scope.partition ?? 'aws'}:ssm:${scope.region}:${scope.account}:parameter/${name.replace(/^\//, '')}`;
}

/** The IAM requests one call makes, or undefined when the project never makes this call (see NOT_PROJECT_CALLS). */
export function authRequestsOf(command: string, input: Input, scope: ArnScope, facts: ResourceFacts): AuthRequest[] | undefined {
  if (NOT_PROJECT_CALLS.has(command) || (command === 'RunInstances' && !isProjectLaunch(input))) return undefined;
  const partition = scope.partition ?? 'aws';
  const region = { 'aws:RequestedRegion': scope.region };
  const req = (action: string, resource: string, context: Record<string, string | string[]> = {}): AuthRequest => ({ action, resource, context: { ...region, ...context } });
  const s3Object = () => `arn:${partition}:s3:::${String(input.Bucket)}/${String(input.Key)}`;
  switch (command) {
    case 'GetObject':
    case 'HeadObject':
      return [req('s3:GetObject', s3Object())];
    case 'PutObject':
      return [req('s3:PutObject', s3Object())];
    case 'DeleteObject':
      return [req('s3:DeleteObject', s3Object())];
    case 'DeleteObjects':
      // One request, one s3:DeleteObject check per key.
      return ((input.Delete as { Objects?: { Key?: string }[] } | undefined)?.Objects ?? []).map((o) => req('s3:DeleteObject', `arn:${partition}:s3:::${String(input.Bucket)}/${String(o.Key)}`));
    case 'ListObjectsV2':
      return [req('s3:ListBucket', `arn:${partition}:s3:::${String(input.Bucket)}`, input.Prefix ? { 's3:prefix': String(input.Prefix) } : {})];
    case 'GetSecretValue':
    case 'PutSecretValue':
    case 'DeleteSecret':
      return [req(`secretsmanager:${command}`, secretArn(scope, String(input.SecretId)))];
    case 'CreateSecret':
      return [req('secretsmanager:CreateSecret', secretArn(scope, String(input.Name)))];
    case 'ListSecrets':
      return [req('secretsmanager:ListSecrets', '*')];
    case 'GetParameter':
    case 'PutParameter':
    case 'DeleteParameter':
      return [req(`ssm:${command}`, parameterArn(scope, String(input.Name)))];
    case 'GetParameters':
      return ((input.Names as string[] | undefined) ?? []).map((n) => req('ssm:GetParameters', parameterArn(scope, n)));
    case 'GetParametersByPath':
      return [req('ssm:GetParametersByPath', parameterArn(scope, String(input.Path)))];
    case 'RegisterTargets':
    case 'DeregisterTargets':
      return [req(`elasticloadbalancing:${command}`, String(input.TargetGroupArn))];
    case 'DescribeTargetHealth':
      return [req('elasticloadbalancing:DescribeTargetHealth', '*')];
    case 'RunInstances':
      return runInstances(input, scope, req);
    case 'TerminateInstances':
      return ((input.InstanceIds as string[] | undefined) ?? []).map((id) => req('ec2:TerminateInstances', ec2Arn(scope, id), tagContext('aws:ResourceTag', facts.tagsOf(id))));
    case 'AttachNetworkInterface':
      return [
        req('ec2:AttachNetworkInterface', ec2Arn(scope, String(input.NetworkInterfaceId)), tagContext('aws:ResourceTag', facts.tagsOf(String(input.NetworkInterfaceId)))),
        req('ec2:AttachNetworkInterface', ec2Arn(scope, String(input.InstanceId)), tagContext('aws:ResourceTag', facts.tagsOf(String(input.InstanceId)))),
      ];
    case 'DetachNetworkInterface': {
      const joined = facts.attachment(String(input.AttachmentId)) ?? {};
      return [joined.interfaceId, joined.instanceId].map((id) =>
        id ? req('ec2:DetachNetworkInterface', ec2Arn(scope, id), tagContext('aws:ResourceTag', facts.tagsOf(id))) : req('ec2:DetachNetworkInterface', `unknown attachment ${String(input.AttachmentId)}`),
      );
    }
    case 'CreateTags': {
      const tags = requestTags(input.Tags);
      return ((input.Resources as string[] | undefined) ?? []).map((id) =>
        req('ec2:CreateTags', ec2Arn(scope, id), { ...tagContext('aws:RequestTag', tags), 'aws:TagKeys': Object.keys(tags) }),
      );
    }
    default:
      if (SERVICE_OF[command]) return [req(`${SERVICE_OF[command]}:${command}`, '*')];
      // EC2 reads (Describe*, GetInstanceTypesFromInstanceRequirements) accept no resource ARN.
      if (/^(Describe|GetInstanceTypes)/.test(command)) return [req(`ec2:${command}`, '*')];
      return [req(`unknown:${command}`, '*')];
  }
}

/**
 * A resource the launch creates, by an id no existing resource has: its ARN is not known before the
 * launch, and a wildcard here would match a statement naming one existing resource of the kind (the
 * simulator matches a wildcard request against each pattern), as no created resource would.
 */
const CREATED_ID: Record<string, string> = { instance: 'i-0launched', volume: 'vol-0launched', 'network-interface': 'eni-0launched', 'spot-instances-request': 'sir-0launched' };
const created = (base: string, type: string) => `${base}:${type}/${CREATED_ID[type] ?? 'launched'}`;

function runInstances(input: Input, scope: ArnScope, req: (action: string, resource: string, context?: Record<string, string | string[]>) => AuthRequest): AuthRequest[] {
  const partition = scope.partition ?? 'aws';
  const base = `arn:${partition}:ec2:${scope.region}:${scope.account}`;
  const specs = (input.TagSpecifications as { ResourceType?: string; Tags?: unknown }[] | undefined) ?? [];
  const tagsFor = (type: string) => requestTags(specs.find((s) => s.ResourceType === type)?.Tags);
  // EC2 judges request tags per resource type: each created resource carries only its own TagSpecification's tags.
  const withTagsOf = (type: string) => {
    const tags = tagsFor(type);
    return { ...tagContext('aws:RequestTag', tags), 'aws:TagKeys': Object.keys(tags) };
  };
  const out = [
    req('ec2:RunInstances', created(base, 'instance'), withTagsOf('instance')),
    req('ec2:RunInstances', created(base, 'volume'), withTagsOf('volume')),
    req('ec2:RunInstances', created(base, 'network-interface'), withTagsOf('network-interface')),
    req('ec2:RunInstances', `${base}:subnet/${String(input.SubnetId)}`),
    req('ec2:RunInstances', `arn:${partition}:ec2:${scope.region}::image/${String(input.ImageId)}`),
    ...((input.SecurityGroupIds as string[] | undefined) ?? []).map((sg) => req('ec2:RunInstances', `${base}:security-group/${sg}`)),
  ];
  if (typeof input.KeyName === 'string') out.push(req('ec2:RunInstances', `${base}:key-pair/${input.KeyName}`));
  out.push(...launchOptionRequests(input, base, withTagsOf, req));
  // Every resource type the request tags is tagged by it (ec2:CreateTags with ec2:CreateAction = RunInstances).
  for (const type of [...new Set(specs.map((s) => s.ResourceType ?? 'instance'))]) {
    const tags = tagsFor(type);
    if (Object.keys(tags).length === 0) continue;
    out.push(req('ec2:CreateTags', created(base, type), { ...tagContext('aws:RequestTag', tags), 'aws:TagKeys': Object.keys(tags), 'ec2:CreateAction': 'RunInstances' }));
  }
  if (input.IamInstanceProfile) out.push(req('iam:PassRole', `passrole:${JSON.stringify(input.IamInstanceProfile)}`));
  return out;
}

type Req = (action: string, resource: string, context?: Record<string, string | string[]>) => AuthRequest;
const field = (value: unknown, ...keys: string[]): unknown => keys.reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Input)[k] : undefined), value);

/**
 * The further resources a launch's options make EC2 authorise it on: the spot request it creates (with
 * that type's request tags), the placement group (by name), capacity reservation, launch template and
 * license configurations it names, and the subnets, security groups and existing interfaces of
 * NetworkInterfaces. Modelled for every one, granted or refused by the policy, so the proof judges them.
 */
function launchOptionRequests(input: Input, base: string, withTagsOf: (type: string) => Record<string, string | string[]>, req: Req): AuthRequest[] {
  const out: AuthRequest[] = [];
  if (field(input, 'InstanceMarketOptions', 'MarketType') === 'spot') out.push(req('ec2:RunInstances', created(base, 'spot-instances-request'), withTagsOf('spot-instances-request')));
  const placementGroup = field(input, 'Placement', 'GroupName') ?? field(input, 'Placement', 'GroupId');
  if (typeof placementGroup === 'string') out.push(req('ec2:RunInstances', `${base}:placement-group/${placementGroup}`));
  const reservation = field(input, 'CapacityReservationSpecification', 'CapacityReservationTarget', 'CapacityReservationId');
  if (typeof reservation === 'string') out.push(req('ec2:RunInstances', `${base}:capacity-reservation/${reservation}`));
  const template = field(input, 'LaunchTemplate', 'LaunchTemplateId') ?? field(input, 'LaunchTemplate', 'LaunchTemplateName');
  if (typeof template === 'string') out.push(req('ec2:RunInstances', `${base}:launch-template/${template}`));
  for (const license of (input.LicenseSpecifications as { LicenseConfigurationArn?: string }[] | undefined) ?? []) {
    out.push(req('ec2:RunInstances', license.LicenseConfigurationArn ?? `${base}:license-configuration/*`));
  }
  for (const eni of (input.NetworkInterfaces as { SubnetId?: string; Groups?: string[]; NetworkInterfaceId?: string }[] | undefined) ?? []) {
    if (eni.SubnetId) out.push(req('ec2:RunInstances', `${base}:subnet/${eni.SubnetId}`));
    for (const sg of eni.Groups ?? []) out.push(req('ec2:RunInstances', `${base}:security-group/${sg}`));
    if (eni.NetworkInterfaceId) out.push(req('ec2:RunInstances', `${base}:network-interface/${eni.NetworkInterfaceId}`));
  }
  return out;
}
