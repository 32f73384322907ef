/**
 * Nstance's group admin surface over groups.jsonc: create (a dynamic group, or an override of a
 * config.jsonc group that, as in Nstance, may change only size, instance type and vars), delete,
 * list and status. Every write is a conditional read-modify-write of groups.jsonc, redone on a
 * conflict (only this group's entry is touched), audited, and followed by a signal to the group.
 */
import type { Client } from '@temporalio/client';
import type { S3Client } from '@aws-sdk/client-s3';
import { isSizeOverride, OVERRIDE_FIELDS, resolveGroups, validateDynamicGroups, type DynamicGroupEntry, type DynamicGroups, type ResolvedGroup, type SizeOverride } from '../../common/config';
import { groupWorkflowId, s3Keys } from '../../common/names';
import type { GroupRef, GroupRotation, GroupStatus } from '../../common/types';
import { writeAudit } from '../../adapters/s3/audit';
import { conditionFor, ShardConfigStore, type ShardConfigSnapshot } from '../../adapters/s3/config-store';
import { ObjectStore, WriteConflictError } from '../../adapters/s3/objects';
import { WorkflowNotFoundError } from '@temporalio/client';
import { signalGroup, signalGroupIfRunning, type SignalledRun } from './groups-signal';
import { rotationOf } from '../../workflows/group-status';
import { groupStatus, groupStatusWithMembers } from './status';

export interface AdminTarget {
  client: Client;
  s3: S3Client;
  bucket: string;
  actor: string;
  now?: () => Date;
}

export interface GroupCreate {
  template?: string;
  size?: number;
  instanceType?: string;
  subnetPool?: string;
  vars?: Record<string, string>;
}

/** One row of `nstance group list --json` (stable: fields are only ever added). */
export interface GroupListRow {
  shard: string;
  tenant: string;
  group: string;
  size: number;
  template: string;
  instanceType: string;
  subnetPool: string;
  /** Defined in config.jsonc (possibly overridden), rather than a dynamic group of groups.jsonc. */
  static: boolean;
  /** For a static group: the fields groups.jsonc overrides. */
  overrides: string[];
}

function storeFor(target: Pick<AdminTarget, 's3' | 'bucket'>, shard: string): ShardConfigStore {
  return new ShardConfigStore(new ObjectStore({ s3: target.s3, bucket: target.bucket }), shard);
}

async function loadShard(store: ShardConfigStore, bucket: string): Promise<ShardConfigSnapshot> {
  const snapshot = await store.load();
  if (!snapshot) throw new Error(`shard "${store.shard}" has no config in s3://${bucket}/${s3Keys.config(store.shard)}: run "nstance config apply" first`);
  return snapshot;
}

function cloneGroups(dynamic: DynamicGroups): DynamicGroups {
  return { groups: JSON.parse(JSON.stringify(dynamic.groups)) as DynamicGroups['groups'] };
}

/** Read, change one entry, validate, write conditionally; again on a conflict. */
async function editEntry(
  target: AdminTarget,
  ref: GroupRef,
  change: (snapshot: ShardConfigSnapshot, entry: DynamicGroupEntry | undefined) => DynamicGroupEntry | undefined,
  attempts = 3,
): Promise<{ before?: DynamicGroupEntry; after?: DynamicGroupEntry; snapshot: ShardConfigSnapshot }> {
  const store = storeFor(target, ref.shard);
  for (let attempt = 1; ; attempt++) {
    const snapshot = await loadShard(store, target.bucket);
    const next = cloneGroups(snapshot.dynamic);
    const before = next.groups[ref.tenant]?.[ref.group];
    const after = change(snapshot, before);
    const entries = (next.groups[ref.tenant] ??= {});
    if (after === undefined) delete entries[ref.group];
    else entries[ref.group] = after;
    if (Object.keys(entries).length === 0) delete next.groups[ref.tenant];
    validateDynamicGroups(snapshot.config, next, `s3://${target.bucket}/${s3Keys.groups(ref.shard)}`);
    try {
      await store.writeDynamic(next, conditionFor(snapshot.groupsEtag));
      return { before, after, snapshot };
    } catch (err) {
      if (err instanceof WriteConflictError && attempt < attempts) continue;
      throw err;
    }
  }
}

async function audit(target: AdminTarget, ref: GroupRef, action: string, details: Record<string, unknown>): Promise<void> {
  const at = (target.now ?? (() => new Date()))().toISOString();
  await writeAudit(
    new ObjectStore({ s3: target.s3, bucket: target.bucket }),
    { shard: ref.shard, action, actor: target.actor, at, tenant: ref.tenant, group: ref.group, details },
    `${action}/${ref.shard}/${ref.tenant}/${ref.group}/${at}`,
  );
}

/**
 * Creates a dynamic group, or overrides a config.jsonc group (size, instance type and vars only;
 * vars merge over an earlier override's). Returns what the group resolves to now.
 */
export async function createGroup(target: AdminTarget, ref: GroupRef, spec: GroupCreate): Promise<{ kind: 'dynamic' | 'override'; group: ResolvedGroup; run: SignalledRun }> {
  const found: { kind: 'dynamic' | 'override' } = { kind: 'dynamic' };
  const { after, snapshot } = await editEntry(target, ref, (snap, entry) => {
    const name = `${ref.tenant}/${ref.group}`;
    if (snap.config.groups[ref.tenant]?.[ref.group]) {
      found.kind = 'override';
      const refused = [spec.template !== undefined ? '--template' : '', spec.subnetPool !== undefined ? '--subnet-pool' : ''].filter(Boolean);
      if (refused.length > 0) {
        throw new Error(`group ${name} is defined in config.jsonc: an override may change only ${OVERRIDE_FIELDS.join(', ')} (as in Nstance), not ${refused.join(', ')}`);
      }
      const earlier = entry && isSizeOverride(entry) ? entry : {};
      const override: SizeOverride = { ...earlier };
      if (spec.size !== undefined) override.size = spec.size;
      if (spec.instanceType !== undefined) override.instance_type = spec.instanceType;
      if (spec.vars !== undefined) override.vars = { ...earlier.vars, ...spec.vars };
      if (Object.keys(override).length === 0) throw new Error(`group ${name}: give at least one of --size, --instance-type, --var to override`);
      return override;
    }
    if (entry) throw new Error(`group ${name} already exists in groups.jsonc: use "nstance group scale" to resize it, or delete it first`);
    if (spec.template === undefined || spec.size === undefined) throw new Error(`group ${name} is new: --template and --size are required`);
    return {
      template: spec.template,
      size: spec.size,
      ...(spec.instanceType !== undefined ? { instance_type: spec.instanceType } : {}),
      ...(spec.subnetPool !== undefined ? { subnet_pool: spec.subnetPool } : {}),
      ...(spec.vars !== undefined ? { vars: spec.vars } : {}),
    };
  });
  const next = cloneGroups(snapshot.dynamic);
  (next.groups[ref.tenant] ??= {})[ref.group] = after as DynamicGroupEntry;
  const resolved = resolveGroups(snapshot.config, next).find((g) => g.tenant === ref.tenant && g.group === ref.group) as ResolvedGroup;
  await audit(target, ref, 'group.create', { kind: found.kind, entry: after });
  const run = await signalGroup(target.client, ref, { reason: 'group-created', actor: target.actor }, { size: resolved.size, template: resolved.template });
  return { kind: found.kind, group: resolved, run };
}

/**
 * Deletes a dynamic group (its instances drain, then its workflow ends) or a static group's override (back to
 * config.jsonc). `run`: the group run signalled (absent when a deleted dynamic group's workflow no longer ran).
 */
export async function deleteGroup(target: AdminTarget, ref: GroupRef): Promise<{ kind: 'dynamic' | 'override'; run?: SignalledRun }> {
  const found: { kind: 'dynamic' | 'override' } = { kind: 'dynamic' };
  await editEntry(target, ref, (snap, entry) => {
    const name = `${ref.tenant}/${ref.group}`;
    const isStatic = snap.config.groups[ref.tenant]?.[ref.group] !== undefined;
    if (isStatic && !entry) throw new Error(`group ${name} is defined in config.jsonc and has no override: remove it from the config and apply`);
    if (!entry) {
      const known = resolveGroups(snap.config, snap.dynamic).map((g) => `${g.tenant}/${g.group}`);
      throw new Error(`group ${name} does not exist in shard "${ref.shard}"; groups: ${known.join(', ') || '(none)'}`);
    }
    if (isStatic) found.kind = 'override';
    return undefined;
  });
  const kind = found.kind;
  await audit(target, ref, 'group.delete', { kind });
  const request = { reason: 'group-deleted', actor: target.actor };
  // A static group goes back to its config; a deleted dynamic one must not be started again if it already ended.
  if (kind === 'override') return { kind, run: await signalGroup(target.client, ref, request) };
  return (await signalGroupIfRunning(target.client, ref, request)) ? { kind, run: { workflowId: groupWorkflowId(ref.shard, ref.tenant, ref.group) } } : { kind };
}

export function listRows(snapshot: Pick<ShardConfigSnapshot, 'config' | 'dynamic'>): GroupListRow[] {
  return resolveGroups(snapshot.config, snapshot.dynamic).map((g) => {
    const entry = snapshot.dynamic.groups[g.tenant]?.[g.group];
    const isStatic = snapshot.config.groups[g.tenant]?.[g.group] !== undefined;
    const overrides = isStatic && entry && isSizeOverride(entry) ? OVERRIDE_FIELDS.filter((f) => entry[f] !== undefined) : [];
    return { shard: g.shard, tenant: g.tenant, group: g.group, size: g.size, template: g.template, instanceType: g.instanceType, subnetPool: g.subnetPool, static: isStatic, overrides: [...overrides] };
  });
}

export async function listGroups(target: Pick<AdminTarget, 's3' | 'bucket'>, shard: string): Promise<GroupListRow[]> {
  return listRows(await loadShard(storeFor(target, shard), target.bucket));
}

/** `nstance group status --json` (stable: fields are only ever added). */
export interface GroupStatusReport extends GroupListRow {
  vars: Record<string, string>;
  loadBalancers: string[];
  /** The running workflow's counts; absent when no group workflow runs. */
  live?: Pick<GroupStatus, 'desired' | 'running' | 'inService' | 'pending' | 'draining' | 'total' | 'lastError'> & {
    /** Members launched from something the group would not launch now, by the field that changed. */
    drifted: number;
    driftFields: string[];
    /** Members being replaced now, by reason. */
    replacing: Record<string, number>;
    /** The group's run has not judged drift yet: these counts may miss drifted members. */
    unjudged?: true;
  };
}

/** The report's `live` part, from a counts-only status and its rotation counts. */
export function liveCounts(s: GroupStatus, rotation: GroupRotation): NonNullable<GroupStatusReport['live']> {
  return {
    desired: s.desired,
    running: s.running,
    inService: s.inService,
    pending: s.pending,
    draining: s.draining,
    total: s.total,
    ...(s.lastError ? { lastError: s.lastError } : {}),
    drifted: rotation.drifted,
    driftFields: rotation.driftFields,
    replacing: rotation.replacing as Record<string, number>,
    ...(rotation.unjudged ? { unjudged: true as const } : {}),
  };
}

export async function groupStatusReport(target: Pick<AdminTarget, 'client' | 's3' | 'bucket'>, ref: GroupRef): Promise<GroupStatusReport> {
  const snapshot = await loadShard(storeFor(target, ref.shard), target.bucket);
  const row = listRows(snapshot).find((r) => r.tenant === ref.tenant && r.group === ref.group);
  const resolved = resolveGroups(snapshot.config, snapshot.dynamic).find((g) => g.tenant === ref.tenant && g.group === ref.group);
  if (!row || !resolved) {
    const known = listRows(snapshot).map((r) => `${r.tenant}/${r.group}`);
    throw new Error(`group ${ref.tenant}/${ref.group} does not exist in shard "${ref.shard}"; groups: ${known.join(', ') || '(none)'}`);
  }
  const report: GroupStatusReport = { ...row, vars: resolved.vars, loadBalancers: resolved.loadBalancers.map((lb) => lb.key) };
  try {
    // Counts only (a few hundred bytes at any size): the members are paged in only from a worker too old to count the rotation.
    const s = await groupStatus(target.client, ref, { limit: 0 });
    report.live = liveCounts(s, s.rotation ?? rotationOf((await groupStatusWithMembers(target.client, ref)).members));
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
  }
  return report;
}
