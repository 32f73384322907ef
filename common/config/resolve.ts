/**
 * Flattens a validated config (+ dynamic groups) into what a group workflow needs:
 * one ResolvedGroup per group with every default applied and every reference looked up.
 */
import { parseAmount } from '../amount';
import { parseDuration } from '../duration';
import type { Amount } from '../types';
import { DynamicGroups, isSizeOverride } from './dynamic';
import { isPlainObject } from './fields';
import type { GroupConfig, NstanceConfig } from './schema';
import type { InstanceRequirementsConfig } from './aws-access';
import { referencesIn } from './validate';

export interface ResolvedGroup {
  clusterId: string;
  shard: string;
  tenant: string;
  group: string;
  size: number;
  template: string;
  /** Instance id prefix, unique per template. */
  kind: string;
  arch: 'amd64' | 'arm64';
  /** The preferred type: instance_type, the first of instance_types, or '' until instance_requirements are resolved. */
  instanceType: string;
  /** The ordered fallback list (instance_types); absent for a single instance_type. */
  instanceTypes?: string[];
  /** Attribute-based selection, resolved to a type list by the worker (DescribeInstanceTypes). */
  instanceRequirements?: InstanceRequirementsConfig;
  subnetPool: string;
  subnetIds: string[];
  /** RunInstances parameters, merged defaults → template → group; `{{ }}` not yet rendered. */
  args: Record<string, unknown>;
  vars: Record<string, string>;
  /** Unrendered template userdata. */
  userdata?: string;
  /** Images referenced by `{{ .Image.X }}` in args or userdata, sorted. */
  imageNames: string[];
  drainTimeoutMs: number;
  loadBalancers: { key: string; targetGroups: { arn: string; targetPort: number }[] }[];
  sizeSource: 'config' | 'dynamic';
  /** Absent: the defaults (Nstance's one over size, none unavailable). */
  maxSurge?: Amount;
  maxUnavailable?: Amount;
  /** Whether a newly resolved image id alone rotates the group (default false, as in Nstance). */
  rotateOnImageChange?: boolean;
}

export interface ShardSettings {
  healthCheckIntervalMs: number;
  defaultDrainTimeoutMs: number;
  imageRefreshIntervalMs: number;
  createRateLimitMs: number;
  expiry: { eligibleAgeMs: number; forcedAgeMs: number } | undefined;
  gc: { intervalMs: number; registrationTimeoutMs: number; recordRetentionMs: number };
}

/** IMDSv2 unless a config explicitly opts out: IMDSv1 lets SSRF bugs read instance credentials. */
export const BASE_ARGS: Readonly<Record<string, unknown>> = { MetadataOptions: { HttpTokens: 'required' } };

// JSON round trip rather than structuredClone: this module may run inside the
// Temporal workflow sandbox, and args are JSON data anyway.
function clone<T>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T);
}

/**
 * Deep merge where later layers win: plain objects merge key by key, anything else
 * (arrays included) is replaced whole, because concatenating e.g. SecurityGroupIds
 * would make it impossible for a group to drop a default.
 */
export function mergeArgs(...layers: (Record<string, unknown> | undefined)[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const layer of layers) {
    if (!layer) continue;
    for (const [key, value] of Object.entries(layer)) {
      const current = out[key];
      out[key] = isPlainObject(current) && isPlainObject(value) ? mergeArgs(current, value) : clone(value);
    }
  }
  return out;
}

function resolveOne(
  config: NstanceConfig,
  tenant: string,
  name: string,
  group: GroupConfig,
  size: number,
  sizeSource: ResolvedGroup['sizeSource'],
): ResolvedGroup {
  const template = config.templates[group.template];
  if (!template) throw new Error(`group ${tenant}/${name}: unknown template "${group.template}" (validate the config first)`);
  const subnetPool = group.subnet_pool ?? template.subnet_pool;
  const subnetIds = config.shard.subnet_pools[subnetPool];
  if (!subnetIds) throw new Error(`group ${tenant}/${name}: unknown subnet pool "${subnetPool}" (validate the config first)`);
  const args = mergeArgs(BASE_ARGS, config.defaults.args, template.args, group.args);
  const userdata = template.userdata?.content;
  const imageNames = new Set<string>();
  for (const { ref } of [...referencesIn(args, []), ...referencesIn(userdata ?? '', [])]) {
    if (ref[0] === 'Image' && ref.length === 2) imageNames.add(ref[1]);
  }
  const loadBalancers = (group.load_balancers ?? []).map((key) => {
    const lb = config.load_balancers[key];
    if (!lb) throw new Error(`group ${tenant}/${name}: unknown load balancer "${key}" (validate the config first)`);
    return { key, targetGroups: lb.target_groups.map((tg) => ({ arn: tg.arn, targetPort: tg.target_port })) };
  });
  const resolved: ResolvedGroup = {
    clusterId: config.cluster.id,
    shard: config.shard.id,
    tenant,
    group: name,
    size,
    template: group.template,
    kind: template.kind,
    arch: template.arch,
    ...instanceChoice(group.instance_type !== undefined || group.instance_types !== undefined || group.instance_requirements !== undefined ? group : template),
    subnetPool,
    subnetIds: [...subnetIds],
    args,
    vars: { ...config.defaults.vars, ...template.vars, ...group.vars },
    imageNames: [...imageNames].sort(),
    drainTimeoutMs: parseDuration(group.drain_timeout ?? config.shard.default_drain_timeout),
    loadBalancers,
    sizeSource,
  };
  if (userdata !== undefined) resolved.userdata = userdata;
  const maxSurge = group.max_surge === undefined ? undefined : parseAmount(group.max_surge);
  const maxUnavailable = group.max_unavailable === undefined ? undefined : parseAmount(group.max_unavailable);
  if (maxSurge) resolved.maxSurge = maxSurge;
  if (maxUnavailable) resolved.maxUnavailable = maxUnavailable;
  if (group.rotate_on_image_change) resolved.rotateOnImageChange = true;
  return resolved;
}

/** What to launch, from the group when it says (any of the three fields), else from its template. */
function instanceChoice(from: Pick<GroupConfig, 'instance_type' | 'instance_types' | 'instance_requirements'>): Pick<ResolvedGroup, 'instanceType' | 'instanceTypes' | 'instanceRequirements'> {
  if (from.instance_types) return { instanceType: from.instance_types[0], instanceTypes: [...from.instance_types] };
  if (from.instance_requirements) return { instanceType: '', instanceRequirements: clone(from.instance_requirements) };
  return { instanceType: from.instance_type ?? '' };
}

/** One group with config and dynamic groups applied, or undefined if it exists in neither. */
export function resolveGroup(
  config: NstanceConfig,
  dynamic: DynamicGroups | undefined,
  tenant: string,
  group: string,
): ResolvedGroup | undefined {
  const staticGroup = config.groups[tenant]?.[group];
  const entry = dynamic?.groups[tenant]?.[group];
  if (staticGroup) {
    // A full dynamic group shadowing a static one is rejected by validateDynamicGroups; config wins here.
    if (!entry || !isSizeOverride(entry)) return resolveOne(config, tenant, group, staticGroup, staticGroup.size, 'config');
    const overridden: GroupConfig = {
      ...staticGroup,
      ...(entry.instance_type !== undefined ? { instance_type: entry.instance_type } : {}),
      ...(entry.vars !== undefined ? { vars: { ...staticGroup.vars, ...entry.vars } } : {}),
    };
    return resolveOne(config, tenant, group, overridden, entry.size ?? staticGroup.size, entry.size !== undefined ? 'dynamic' : 'config');
  }
  if (entry && !isSizeOverride(entry)) return resolveOne(config, tenant, group, entry, entry.size, 'dynamic');
  return undefined;
}

/** Every group (config.jsonc and groups.jsonc), sorted by tenant then group for stable ordering. */
export function resolveGroups(config: NstanceConfig, dynamic?: DynamicGroups): ResolvedGroup[] {
  const names = new Set<string>();
  const key = (t: string, g: string) => JSON.stringify([t, g]);
  for (const [tenant, groups] of Object.entries(config.groups)) for (const g of Object.keys(groups)) names.add(key(tenant, g));
  for (const [tenant, groups] of Object.entries(dynamic?.groups ?? {})) {
    for (const [g, entry] of Object.entries(groups)) if (!isSizeOverride(entry)) names.add(key(tenant, g));
  }
  const out: ResolvedGroup[] = [];
  for (const k of names) {
    const [tenant, group] = JSON.parse(k) as [string, string];
    const resolved = resolveGroup(config, dynamic, tenant, group);
    if (resolved) out.push(resolved);
  }
  return out.sort((a, b) => (a.tenant === b.tenant ? cmp(a.group, b.group) : cmp(a.tenant, b.tenant)));
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function shardSettings(config: NstanceConfig): ShardSettings {
  const s = config.shard;
  return {
    healthCheckIntervalMs: parseDuration(s.health_check_interval),
    defaultDrainTimeoutMs: parseDuration(s.default_drain_timeout),
    imageRefreshIntervalMs: parseDuration(s.image_refresh_interval),
    createRateLimitMs: parseDuration(s.create_rate_limit),
    expiry: s.expiry
      ? { eligibleAgeMs: parseDuration(s.expiry.eligible_age), forcedAgeMs: parseDuration(s.expiry.forced_age) }
      : undefined,
    gc: {
      intervalMs: parseDuration(s.garbage_collection.interval),
      registrationTimeoutMs: parseDuration(s.garbage_collection.registration_timeout),
      recordRetentionMs: parseDuration(s.garbage_collection.deleted_record_retention),
    },
  };
}
