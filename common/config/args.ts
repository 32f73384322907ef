/**
 * `args` are passed through to EC2 RunInstances, so they are checked against the
 * SDK's own parameter list: a misspelt parameter would otherwise be dropped by EC2
 * or rejected only at launch time, far from the config that caused it.
 */
import type { RunInstancesRequest } from '@aws-sdk/client-ec2';
import { z } from 'zod';
import { templateReferences } from '../template';
import { isPlainObject } from './fields';
import { checkRunInstancesLimits } from './run-instances-limits';
import { suggest } from './suggest';

const RUN_INSTANCES_PARAMETERS = [
  'AdditionalInfo', 'BlockDeviceMappings', 'CapacityReservationSpecification', 'ClientToken',
  'CpuOptions', 'CreditSpecification', 'DisableApiStop', 'DisableApiTermination', 'DryRun',
  'EbsOptimized', 'ElasticGpuSpecification', 'ElasticInferenceAccelerators', 'EnablePrimaryIpv6',
  'EnclaveOptions', 'HibernationOptions', 'IamInstanceProfile', 'ImageId',
  'InstanceInitiatedShutdownBehavior', 'InstanceMarketOptions', 'InstanceType', 'Ipv6AddressCount',
  'Ipv6Addresses', 'KernelId', 'KeyName', 'LaunchTemplate', 'LicenseSpecifications',
  'MaintenanceOptions', 'MaxCount', 'MetadataOptions', 'MinCount', 'Monitoring',
  'NetworkInterfaces', 'NetworkPerformanceOptions', 'Operator', 'Placement', 'PrivateDnsNameOptions',
  'PrivateIpAddress', 'RamdiskId', 'SecondaryInterfaces', 'SecurityGroupIds', 'SecurityGroups',
  'SubnetId', 'TagSpecifications', 'UserData',
] as const satisfies readonly (keyof RunInstancesRequest)[];

// Fails to compile when an SDK upgrade adds a parameter, so the list cannot go stale.
type Unlisted = Exclude<keyof RunInstancesRequest, (typeof RUN_INSTANCES_PARAMETERS)[number]>;
const listIsComplete: [Unlisted] extends [never] ? true : Unlisted = true;
void listIsComplete;

/** Parameters nstance sets itself; each maps to the config field to use instead. */
export const RESERVED_ARGS: Readonly<Record<string, string>> = {
  MinCount: 'nstance launches one instance per call; set the group "size" instead',
  MaxCount: 'nstance launches one instance per call; set the group "size" instead',
  ClientToken: 'nstance derives it from the instance workflow id so a retried launch never runs twice',
  UserData: 'set the template "userdata.content" instead',
  SubnetId: 'set "subnet_pool" (template or group) and list subnets in shard.subnet_pools instead',
  InstanceType: 'set "instance_type" (template or group) instead',
  DryRun: 'nstance always launches for real',
};

export const TEMPLATE_ROOTS = ['Image', 'Nonce', 'Server', 'Vars', 'Instance', 'Cluster', 'Shard', 'Group', 'Tenant'] as const;

/**
 * The fields of the roots with a fixed shape (activities/launch.ts builds them; a unit
 * test keeps the two in step). Image and Vars take any name the config defines; Nonce,
 * Group and Tenant are values themselves.
 */
export const TEMPLATE_FIELDS: Readonly<Record<'Server' | 'Instance' | 'Cluster' | 'Shard', readonly string[]>> = {
  Server: ['RegistrationAddr', 'CACert'],
  Instance: ['ID', 'Kind', 'Type'],
  Cluster: ['ID'],
  Shard: ['ID'],
};

const KNOWN = new Set<string>(RUN_INSTANCES_PARAMETERS);
const HTTP_TOKENS = ['required', 'optional'];
const RESERVED_TAG_PREFIX = 'nstance:';

type Report = (path: readonly (string | number)[], message: string) => void;

/** Problems with `{{ }}` in one string that do not depend on the rest of the config. */
export function templateTextProblems(text: string): string[] {
  let refs: string[][];
  try {
    refs = templateReferences(text);
  } catch (e) {
    return [(e as Error).message];
  }
  const problems: string[] = [];
  for (const ref of refs) {
    const shown = `{{ .${ref.join('.')} }}`;
    const [root] = ref;
    if (!(TEMPLATE_ROOTS as readonly string[]).includes(root)) {
      const hint = suggest(root, TEMPLATE_ROOTS);
      problems.push(
        `unknown template reference ${shown}${hint ? ` (did you mean .${hint}?)` : ''}; references must start with one of: ${TEMPLATE_ROOTS.map((r) => `.${r}`).join(', ')}`,
      );
    } else if ((root === 'Nonce' || root === 'Group' || root === 'Tenant') && ref.length !== 1) {
      problems.push(`${shown}: .${root} has no fields; write {{ .${root} }}`);
    } else if (root in TEMPLATE_FIELDS) {
      const fields = TEMPLATE_FIELDS[root as keyof typeof TEMPLATE_FIELDS];
      if (ref.length !== 2 || !fields.includes(ref[1])) {
        const hint = ref[1] ? suggest(ref[1], fields) : undefined;
        problems.push(`${shown}: write one of ${fields.map((f) => `{{ .${root}.${f} }}`).join(', ')}${hint ? ` (did you mean .${root}.${hint}?)` : ''}`);
      }
    } else if ((root === 'Image' || root === 'Vars') && ref.length !== 2) {
      problems.push(`${shown}: write {{ .${root}.<name> }} with exactly one name`);
    }
  }
  return problems;
}

/** Visits every string leaf of a JSON-like value with its path. */
export function forEachString(
  value: unknown,
  path: readonly (string | number)[],
  visit: (text: string, path: readonly (string | number)[]) => void,
): void {
  if (typeof value === 'string') visit(value, path);
  else if (Array.isArray(value)) value.forEach((v, i) => forEachString(v, [...path, i], visit));
  else if (isPlainObject(value)) for (const [k, v] of Object.entries(value)) forEachString(v, [...path, k], visit);
}

function checkTags(tagSpecs: unknown, report: Report): void {
  if (!Array.isArray(tagSpecs)) {
    report(['TagSpecifications'], 'must be a list of {ResourceType, Tags}');
    return;
  }
  tagSpecs.forEach((spec, i) => {
    const tags = isPlainObject(spec) ? spec.Tags : undefined;
    if (!Array.isArray(tags)) return;
    tags.forEach((tag, j) => {
      const key = isPlainObject(tag) ? tag.Key : undefined;
      if (typeof key === 'string' && key.startsWith(RESERVED_TAG_PREFIX)) {
        report(['TagSpecifications', i, 'Tags', j, 'Key'], `tag "${key}": tags starting with "${RESERVED_TAG_PREFIX}" are set by nstance and cannot be overridden`);
      }
    });
  });
}

/**
 * The JSON shape of each RunInstances parameter (what the SDK would send), so a
 * `"SecurityGroupIds": "sg-1"` is caught here rather than as a rejected launch.
 * SecondaryInterfaces is new in the SDK and left unchecked.
 */
const PARAMETER_SHAPES: Readonly<Record<string, 'list' | 'object' | 'string' | 'boolean' | 'number'>> = {
  BlockDeviceMappings: 'list', ElasticGpuSpecification: 'list', ElasticInferenceAccelerators: 'list', Ipv6Addresses: 'list',
  LicenseSpecifications: 'list', NetworkInterfaces: 'list', SecurityGroupIds: 'list', SecurityGroups: 'list', TagSpecifications: 'list',
  CapacityReservationSpecification: 'object', CpuOptions: 'object', CreditSpecification: 'object', EnclaveOptions: 'object',
  HibernationOptions: 'object', IamInstanceProfile: 'object', InstanceMarketOptions: 'object', LaunchTemplate: 'object',
  MaintenanceOptions: 'object', MetadataOptions: 'object', Monitoring: 'object', NetworkPerformanceOptions: 'object',
  Operator: 'object', Placement: 'object', PrivateDnsNameOptions: 'object',
  AdditionalInfo: 'string', ImageId: 'string', InstanceInitiatedShutdownBehavior: 'string', KernelId: 'string',
  KeyName: 'string', PrivateIpAddress: 'string', RamdiskId: 'string',
  DisableApiStop: 'boolean', DisableApiTermination: 'boolean', EbsOptimized: 'boolean', EnablePrimaryIpv6: 'boolean',
  Ipv6AddressCount: 'number',
};

function shapeOf(value: unknown): string {
  if (Array.isArray(value)) return 'list';
  if (isPlainObject(value)) return 'object';
  return typeof value;
}

const SHAPE_EXAMPLE: Readonly<Record<string, string>> = {
  list: 'a list, e.g. ["…"]',
  object: 'an object, e.g. { … }',
  string: 'a string',
  boolean: 'true or false',
  number: 'a number',
};

export function checkArgs(args: Record<string, unknown>, report: Report): void {
  for (const [key, value] of Object.entries(args)) {
    const shape = PARAMETER_SHAPES[key];
    if (shape && value !== null && shapeOf(value) !== shape) report([key], `${key} must be ${SHAPE_EXAMPLE[shape]}, got ${JSON.stringify(value)}`);
  }
  for (const key of Object.keys(args)) {
    if (key in RESERVED_ARGS) {
      report([key], `${key} is controlled by nstance: ${RESERVED_ARGS[key]}`);
    } else if (!KNOWN.has(key)) {
      const hint = suggest(key, KNOWN);
      report(
        [key],
        `unknown RunInstances parameter "${key}"${hint ? `; did you mean "${hint}"?` : ''} (args use the EC2 API's PascalCase names, e.g. ImageId, SecurityGroupIds)`,
      );
    }
  }
  const metadata = args.MetadataOptions;
  if (metadata !== undefined) {
    if (!isPlainObject(metadata)) report(['MetadataOptions'], 'must be an object');
    else if (metadata.HttpTokens !== undefined && !HTTP_TOKENS.includes(metadata.HttpTokens as string)) {
      report(['MetadataOptions', 'HttpTokens'], `must be "required" or "optional", got ${JSON.stringify(metadata.HttpTokens)}`);
    }
  }
  if (args.TagSpecifications !== undefined) checkTags(args.TagSpecifications, report);
  checkRunInstancesLimits(args, report);
  forEachString(args, [], (text, path) => {
    for (const problem of templateTextProblems(text)) report(path, problem);
  });
}

/** Free-form RunInstances parameters (PascalCase), merged defaults → template → group. */
export function argsSchema() {
  return z.record(z.string(), z.unknown()).superRefine((args, ctx) => {
    checkArgs(args, (path, message) => ctx.addIssue({ code: 'custom', path: [...path], message }));
  });
}
