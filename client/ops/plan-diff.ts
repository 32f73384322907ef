/**
 * What `config apply` would change, computed by the code the workflows run: the same config
 * resolution and group spec (activities/group-spec.ts), the same scale-override rule as apply, and
 * the group's own drift decision (workflows/decisions/drift.ts) for which members would rotate.
 * Pure: the caller reads the stored config and the groups' members.
 */
import { buildGroupSpec } from '../../activities/group-spec';
import { canonicalJson } from '../../common/launch-fingerprint';
import { resolveGroups, shardSettings, type DynamicGroups, type NstanceConfig, type ResolvedGroup } from '../../common/config';
import { DRIFT_FIELDS, type DriftField, type GroupSpec, type GroupStatus, type HashedField, type LaunchVersion } from '../../common/types';
import { driftedFields } from '../../workflows/decisions/drift';
import { dropChangedSizeOverrides } from './apply';

/** IAM actions the next config needs that the previous one did not (the seam issue 11's generator fills). */
export type NewIamActions = (previous: NstanceConfig | undefined, next: NstanceConfig) => string[];

export interface GroupRotation {
  group: string;
  /** Hashed fields whose change replaces members (Nstance's names). */
  fields: HashedField[];
  /** Members that would be replaced: counted from the running group when known, else the group's size. */
  members: number;
  /** Whether `members` was counted from the running group's members (false: taken from config). */
  counted: boolean;
}

export interface LoadBalancerChanges {
  added: string[];
  removed: string[];
  /** Definitions whose target groups changed. */
  changed: string[];
  /** Per group: target groups its members join or leave. */
  groups: { group: string; added: string[]; removed: string[] }[];
}

export interface Plan {
  shard: string;
  /** False when applying would change nothing (exit 0); true otherwise (exit 2). */
  changed: boolean;
  groups: {
    added: { group: string; size: number }[];
    removed: { group: string; size: number }[];
    resized: { group: string; from: number; to: number }[];
    rotating: GroupRotation[];
    /** Changes pushed to running instances, never rotated (vars; files once pushed). */
    pushed: { group: string; fields: string[] }[];
    /** Other settings that change nothing running (drain timeout, surge bounds, images' look-up). */
    settings: { group: string; fields: string[] }[];
  };
  loadBalancers: LoadBalancerChanges;
  iam: { added: string[] };
  /** Size overrides (`group scale`) the applied config replaces. */
  droppedOverrides: string[];
  /** Top-level config sections that differ at all (what the lists above do not cover shows here too). */
  sections: string[];
}

export interface PlanInput {
  previous?: { config: NstanceConfig; dynamic: DynamicGroups };
  next: NstanceConfig;
  /** The running groups' statuses with every member and the launch table, by "tenant/group". */
  running?: ReadonlyMap<string, GroupStatus>;
  newIamActions: NewIamActions;
}

const key = (g: { tenant: string; group: string }) => `${g.tenant}/${g.group}`;

function specOf(config: NstanceConfig, resolved: ResolvedGroup): GroupSpec {
  const result = buildGroupSpec(config, resolved, shardSettings(config));
  if (!result.found) throw new Error(`group ${key(resolved)}: no spec`);
  return result.spec;
}

function changedHashedFields(before: GroupSpec, after: GroupSpec): HashedField[] {
  const a = before.fingerprint?.fields;
  const b = after.fingerprint?.fields;
  if (!a || !b) return [];
  return DRIFT_FIELDS.filter((f) => a[f] !== b[f]);
}

/**
 * Members that would rotate, by the group's own decision: each member's launch version against what the
 * group would launch next (same image ids as the version: config apply resolves no image, so a newly resolved
 * image, which rotates only with rotate_on_image_change, is never foreseen here). Members with no version
 * (launched before drift rotation) rotate nothing: the group stamps them with the spec it runs, as current.
 */
function countRotating(status: GroupStatus, next: GroupSpec): number {
  const fingerprint = next.fingerprint;
  if (!fingerprint) return 0;
  const versions = new Map((status.launches ?? []).map((v): [number, LaunchVersion] => [v.id, v]));
  let rotating = 0;
  for (const m of status.members) {
    if (m.leaving || m.phase === 'terminated' || m.phase === 'failed' || m.phase === 'draining' || m.phase === 'terminating') continue;
    const version = m.launch === undefined ? undefined : versions.get(m.launch);
    const fields: DriftField[] = version ? driftedFields(version, { fingerprint, images: version.images }, false) : [];
    if (fields.length > 0) rotating++;
  }
  return rotating;
}

function differingSettings(before: GroupSpec, after: GroupSpec): string[] {
  const fields: string[] = [];
  const same = (a: unknown, b: unknown) => canonicalJson(a) === canonicalJson(b);
  if (before.drainTimeoutMs !== after.drainTimeoutMs) fields.push('drain_timeout');
  if (!same(before.maxSurge, after.maxSurge)) fields.push('max_surge');
  if (!same(before.maxUnavailable, after.maxUnavailable)) fields.push('max_unavailable');
  if ((before.rotateOnImageChange ?? false) !== (after.rotateOnImageChange ?? false)) fields.push('rotate_on_image_change');
  if (!same(before.launch.images, after.launch.images)) fields.push('images');
  if (!same(before.lifecycle.expiry, after.lifecycle.expiry)) fields.push('shard.expiry');
  if (before.lifecycle.registrationTimeoutMs !== after.lifecycle.registrationTimeoutMs) fields.push('shard.garbage_collection.registration_timeout');
  if (before.reconcileIntervalMs !== after.reconcileIntervalMs) fields.push('shard.health_check_interval');
  if (before.createRateLimitMs !== after.createRateLimitMs) fields.push('shard.create_rate_limit');
  if (before.imageRefreshMs !== after.imageRefreshMs) fields.push('shard.image_refresh_interval');
  if (!same(before.launch.subnetIds, after.launch.subnetIds)) fields.push('subnets');
  return fields;
}

function loadBalancerChanges(before: NstanceConfig | undefined, after: NstanceConfig, pairs: [ResolvedGroup | undefined, ResolvedGroup | undefined][]): LoadBalancerChanges {
  const a = before?.load_balancers ?? {};
  const b = after.load_balancers ?? {};
  const out: LoadBalancerChanges = { added: [], removed: [], changed: [], groups: [] };
  for (const name of Object.keys(b).sort()) {
    if (!(name in a)) out.added.push(name);
    else if (canonicalJson(a[name]) !== canonicalJson(b[name])) out.changed.push(name);
  }
  for (const name of Object.keys(a).sort()) if (!(name in b)) out.removed.push(name);
  for (const [old, now] of pairs) {
    const arns = (g: ResolvedGroup | undefined) => new Set(g?.loadBalancers.flatMap((lb) => lb.targetGroups.map((tg) => `${tg.arn}:${tg.targetPort}`)) ?? []);
    const was = arns(old);
    const will = arns(now);
    const added = [...will].filter((x) => !was.has(x)).sort();
    const removed = [...was].filter((x) => !will.has(x)).sort();
    if (added.length + removed.length > 0) out.groups.push({ group: key((now ?? old) as ResolvedGroup), added, removed });
  }
  return out;
}

export function computePlan(input: PlanInput): Plan {
  const { dynamic: nextDynamic, dropped } = dropChangedSizeOverrides(input.previous?.config, input.next, input.previous?.dynamic ?? { groups: {} });
  const before = new Map((input.previous ? resolveGroups(input.previous.config, input.previous.dynamic) : []).map((g) => [key(g), g]));
  const after = new Map(resolveGroups(input.next, nextDynamic).map((g) => [key(g), g]));
  const plan: Plan = {
    shard: input.next.shard.id,
    changed: false,
    groups: { added: [], removed: [], resized: [], rotating: [], pushed: [], settings: [] },
    loadBalancers: { added: [], removed: [], changed: [], groups: [] },
    iam: { added: [] },
    droppedOverrides: dropped,
    sections: [],
  };
  const pairs: [ResolvedGroup | undefined, ResolvedGroup | undefined][] = [];
  for (const [name, now] of after) {
    const old = before.get(name);
    pairs.push([old, now]);
    if (!old) {
      plan.groups.added.push({ group: name, size: now.size });
      continue;
    }
    if (old.size !== now.size) plan.groups.resized.push({ group: name, from: old.size, to: now.size });
    const oldSpec = specOf(input.previous?.config as NstanceConfig, old);
    const newSpec = specOf(input.next, now);
    const fields = changedHashedFields(oldSpec, newSpec);
    const status = input.running?.get(name);
    if (fields.length > 0) {
      const members = status ? countRotating(status, newSpec) : old.size;
      plan.groups.rotating.push({ group: name, fields, members, counted: status !== undefined });
    }
    if (canonicalJson(old.vars) !== canonicalJson(now.vars)) plan.groups.pushed.push({ group: name, fields: ['vars'] });
    const settings = differingSettings(oldSpec, newSpec);
    if (settings.length > 0) plan.groups.settings.push({ group: name, fields: settings });
  }
  for (const [name, old] of before) {
    if (after.has(name)) continue;
    pairs.push([old, undefined]);
    plan.groups.removed.push({ group: name, size: old.size });
  }
  plan.loadBalancers = loadBalancerChanges(input.previous?.config, input.next, pairs);
  plan.iam.added = [...new Set(input.newIamActions(input.previous?.config, input.next))].sort();
  const g = plan.groups;
  const lb = plan.loadBalancers;
  const previous = (input.previous?.config ?? {}) as Record<string, unknown>;
  const next = input.next as unknown as Record<string, unknown>;
  plan.sections = [...new Set([...Object.keys(previous), ...Object.keys(next)])].filter((s) => canonicalJson(previous[s]) !== canonicalJson(next[s])).sort();
  plan.changed = [g.added, g.removed, g.resized, g.rotating, g.pushed, g.settings, lb.added, lb.removed, lb.changed, lb.groups, plan.iam.added, dropped, plan.sections].some(
    (list) => list.length > 0,
  );
  return plan;
}
