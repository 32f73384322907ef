/**
 * The constraints Nstance's own config loader enforces that the schema's field checks do not
 * (identifier rules, a subnet in one pool only, the ordering of its durations), and the limits EC2
 * applies to what RunInstances receives as a whole (rendered userdata size, tag count and lengths;
 * each parameter's own limits are in run-instances-limits.ts), so that a config EC2 or
 * Nstance would refuse is refused at load time with the field named, not at launch.
 */
import { parseDuration } from '../duration';
import { renderTemplate, type TemplateData } from '../template';
import { BASE_ARGS, mergeArgs } from './resolve';
import type { ConfigPath, IssueList } from './issues';
import type { GroupConfig, NstanceConfig } from './schema';

/** Nstance's identifiers (cluster, shard, tenant, group, subnet pool ids): internal/identifiers. */
export const NSTANCE_ID_PATTERN = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
export const NSTANCE_ID_MAX = 32;
/** Nstance's group `template` reference: `validate:"alphanum"`. */
const TEMPLATE_REF = /^[A-Za-z0-9]+$/;

/** EC2: "User data is limited to 16 KB, in raw form, before it is base64-encoded." */
export const EC2_USERDATA_MAX_BYTES = 16 * 1024;
/** EC2: at most 50 tags per resource, keys up to 128 characters, values up to 256; "aws:" is AWS's. */
export const EC2_MAX_TAGS = 50;
export const EC2_TAG_KEY_MAX = 128;
export const EC2_TAG_VALUE_MAX = 256;
/** EC2: with tags in instance metadata, an instance's tag keys are these characters only, and not ".", ".." or "_index". */
const METADATA_TAG_KEY = /^[A-Za-z0-9+\-=.,_:@]+$/;
const METADATA_TAG_KEYS_REFUSED = ['.', '..', '_index'];
/** Tags nstance puts on every instance (adapters/ec2/instances.ts): they count towards EC2's 50. */
export const NSTANCE_TAG_COUNT = 6;

/**
 * Stand-ins for values only known at launch, at least as long as the real ones (a unit test mints a
 * real nonce and CA to check): the rendered size is then an upper bound.
 */
export const LAUNCH_VALUE_ALLOWANCE = { nonce: 1024, caCert: 2048, imageId: 'ami-0123456789abcdef0', instanceId: 'web-0123456789ab' };

function checkId(value: string, what: string, path: ConfigPath, list: IssueList): void {
  if (value.length > NSTANCE_ID_MAX) list.add(path, `${what} "${value}" is longer than ${NSTANCE_ID_MAX} characters (Nstance's limit for identifiers)`);
  else if (!NSTANCE_ID_PATTERN.test(value)) {
    list.add(path, `${what} "${value}": use lowercase letters, digits and single "-" between them (no "_", no leading, trailing or doubled "-"), as Nstance's identifiers`);
  }
}

function checkBucket(bucket: string, list: IssueList): void {
  const path = ['cluster', 'storage', 'bucket'];
  if (bucket.includes('--')) list.add(path, `bucket "${bucket}" has "--" (Nstance rejects consecutive hyphens in bucket names)`);
  if (bucket.includes('..')) list.add(path, `bucket "${bucket}" has ".." (S3 rejects adjacent periods)`);
  if (/^\d+\.\d+\.\d+\.\d+$/.test(bucket)) list.add(path, `bucket "${bucket}" is formatted as an IP address (S3 rejects it)`);
  if (/^(xn--|sthree-)/.test(bucket) || /(-s3alias|--ol-s3)$/.test(bucket)) list.add(path, `bucket "${bucket}" uses a prefix or suffix S3 reserves (xn--, sthree-, -s3alias, --ol-s3)`);
}

function checkDurations(config: NstanceConfig, list: IssueList): void {
  const gc = config.shard.garbage_collection;
  if (parseDuration(gc.registration_timeout) <= parseDuration(gc.interval)) {
    list.add(
      ['shard', 'garbage_collection', 'registration_timeout'],
      `registration_timeout (${gc.registration_timeout}) must be greater than garbage_collection.interval (${gc.interval}), as in Nstance: a collection must be able to find an instance still unregistered`,
    );
  }
  const expiry = config.shard.expiry;
  if (expiry && parseDuration(expiry.eligible_age) >= parseDuration(expiry.forced_age)) {
    list.add(['shard', 'expiry', 'forced_age'], `forced_age (${expiry.forced_age}) must be greater than eligible_age (${expiry.eligible_age}), as in Nstance`);
  }
}

/** Checks across the whole config.jsonc; adds to `list`. */
export function checkNstanceConstraints(config: NstanceConfig, list: IssueList): void {
  checkId(config.cluster.id, 'cluster id', ['cluster', 'id'], list);
  checkId(config.shard.id, 'shard id', ['shard', 'id'], list);
  checkBucket(config.cluster.storage.bucket, list);
  checkDurations(config, list);
  const owner = new Map<string, string>();
  for (const [pool, subnets] of Object.entries(config.shard.subnet_pools)) {
    checkId(pool, 'subnet pool', ['shard', 'subnet_pools', pool], list);
    subnets.forEach((subnet, i) => {
      const first = owner.get(subnet);
      if (first !== undefined && first !== pool) list.add(['shard', 'subnet_pools', pool, i], `subnet "${subnet}" is already in pool "${first}": a subnet belongs to one pool only`);
      else owner.set(subnet, pool);
    });
  }
  if (Object.keys(config.shard.subnet_pools).length === 0) list.add(['shard', 'subnet_pools'], 'define at least one subnet pool');
  for (const [name, template] of Object.entries(config.templates)) {
    if (!/^[a-z]{3}$/.test(template.kind)) list.add(['templates', name, 'kind'], `kind "${template.kind}" must be exactly 3 lowercase letters, as in Nstance`);
    if (template.userdata !== undefined && template.userdata.content.length === 0) list.add(['templates', name, 'userdata', 'content'], 'userdata content is empty: remove userdata or give it content');
  }
  for (const [tenant, groups] of Object.entries(config.groups)) {
    checkId(tenant, 'tenant', ['groups', tenant], list);
    for (const [name, group] of Object.entries(groups)) {
      checkId(name, 'group', ['groups', tenant, name], list);
      checkLaunchLimits(config, tenant, name, group, ['groups', tenant, name], list);
    }
  }
}

/** A dynamic group (groups.jsonc) meets the same rules as a static one. */
export function checkDynamicGroupConstraints(config: NstanceConfig, tenant: string, name: string, group: GroupConfig, path: ConfigPath, list: IssueList): void {
  checkId(tenant, 'tenant', path.slice(0, 2), list);
  checkId(name, 'group', path, list);
  checkLaunchLimits(config, tenant, name, group, path, list);
}

/** Tags a group's merged args put on its instances, against EC2's limits. */
function checkTags(args: Record<string, unknown>, path: ConfigPath, list: IssueList): void {
  const specs = Array.isArray(args.TagSpecifications) ? (args.TagSpecifications as unknown[]) : [];
  const metadataTags = (args.MetadataOptions as { InstanceMetadataTags?: unknown } | undefined)?.InstanceMetadataTags === 'enabled';
  specs.forEach((spec, i) => {
    const tags = (spec as { Tags?: unknown }).Tags;
    if (!Array.isArray(tags)) return;
    const resource = (spec as { ResourceType?: unknown }).ResourceType;
    const ours = resource === 'instance' ? NSTANCE_TAG_COUNT : 0;
    if (tags.length + ours > EC2_MAX_TAGS) {
      list.add([...path, 'TagSpecifications', i, 'Tags'], `${tags.length} tags${ours ? ` plus nstance's ${ours}` : ''} is more than EC2's ${EC2_MAX_TAGS} per resource`);
    }
    tags.forEach((tag, j) => {
      const { Key: key, Value: value } = (tag ?? {}) as { Key?: unknown; Value?: unknown };
      if (typeof key === 'string' && key.length > EC2_TAG_KEY_MAX) list.add([...path, 'TagSpecifications', i, 'Tags', j, 'Key'], `tag key is ${key.length} characters; EC2 allows ${EC2_TAG_KEY_MAX}`);
      if (typeof key === 'string' && key.toLowerCase().startsWith('aws:')) list.add([...path, 'TagSpecifications', i, 'Tags', j, 'Key'], `tag "${key}": the "aws:" prefix is reserved by AWS`);
      if (typeof value === 'string' && value.length > EC2_TAG_VALUE_MAX) list.add([...path, 'TagSpecifications', i, 'Tags', j, 'Value'], `tag value is ${value.length} characters; EC2 allows ${EC2_TAG_VALUE_MAX}`);
      if (metadataTags && resource === 'instance' && typeof key === 'string' && (!METADATA_TAG_KEY.test(key) || METADATA_TAG_KEYS_REFUSED.includes(key))) {
        list.add(
          [...path, 'TagSpecifications', i, 'Tags', j, 'Key'],
          `tag "${key}": with MetadataOptions.InstanceMetadataTags "enabled", EC2 allows instance tag keys of letters, digits and + - = . , _ : @ only (no spaces or "/"), and not ".", ".." or "_index"`,
        );
      }
    });
  });
}

/** What `{{ }}` renders to at load time: real values where config knows them, allowances where only a launch does. */
function loadTimeData(config: NstanceConfig, tenant: string, group: string, kind: string, instanceType: string, vars: Record<string, string>): TemplateData {
  const images = Object.fromEntries(Object.keys(config.images).map((name) => [name, LAUNCH_VALUE_ALLOWANCE.imageId]));
  const ip = config.shard.leader_network?.ip;
  return {
    Image: images,
    Nonce: 'n'.repeat(LAUNCH_VALUE_ALLOWANCE.nonce),
    Server: { RegistrationAddr: ip ? `${ip}:8443` : '', CACert: 'c'.repeat(LAUNCH_VALUE_ALLOWANCE.caCert) },
    Vars: vars,
    Instance: { ID: `${kind}-${'0'.repeat(12)}`, Kind: kind, Type: instanceType },
    Cluster: { ID: config.cluster.id },
    Shard: { ID: config.shard.id },
    Group: group,
    Tenant: tenant,
  };
}

/**
 * EC2's limits on one group's RunInstances input (static or dynamic group): the rendered userdata's size
 * and the tags of its merged args. `path` is where the group sits in its own file.
 */
/** Instance types EC2 names are at most this long (u7inh-32tb.480xlarge): the stand-in when only requirements are given. */
const LONGEST_INSTANCE_TYPE = 'u7inh-32tb.480xlarge';

/** The longest type a launch of `group` may render: userdata's size is checked at its largest. */
function longestInstanceType(group: GroupConfig, template: NstanceConfig['templates'][string]): string {
  const explicit = group.instance_type ?? template.instance_type;
  if (explicit) return explicit;
  const listed = group.instance_types ?? template.instance_types;
  if (listed && listed.length > 0) return listed.reduce((a, b) => (b.length > a.length ? b : a));
  return LONGEST_INSTANCE_TYPE;
}

export function checkLaunchLimits(config: NstanceConfig, tenant: string, name: string, group: GroupConfig, path: ConfigPath, list: IssueList): void {
  if (!TEMPLATE_REF.test(group.template)) list.add([...path, 'template'], `template "${group.template}": Nstance's template references are letters and digits only`);
  const template = config.templates[group.template];
  if (!template) return;
  const args = mergeArgs(BASE_ARGS, config.defaults.args, template.args, group.args);
  checkTags(args, [...path, 'args'], list);
  const content = template.userdata?.content;
  if (content === undefined) return;
  const vars = { ...config.defaults.vars, ...template.vars, ...group.vars };
  let rendered: string;
  try {
    rendered = renderTemplate(content, loadTimeData(config, tenant, name, template.kind, longestInstanceType(group, template), vars), `template "${group.template}" userdata`);
  } catch {
    return; // unknown references are reported by the reference checks
  }
  const bytes = new TextEncoder().encode(rendered).length;
  if (bytes > EC2_USERDATA_MAX_BYTES) {
    list.add(
      ['templates', group.template, 'userdata', 'content'],
      `rendered for group ${tenant}/${name} the userdata is about ${bytes} bytes (vars included, launch-time values at their largest), over EC2's ${EC2_USERDATA_MAX_BYTES} (16 KB before base64)`,
    );
  }
}
