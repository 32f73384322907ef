/** The group workflow's state and how instance reports change it (deterministic, no I/O). */
import type { DriftField, GroupSpec, InstanceRecord, InstanceUpdate, Member } from '../common/types';
import type { CachedImage } from './decisions/images';
import type { LaunchVersion } from './decisions/drift';
import { creationBackoffMs, type Removal } from './decisions/reconcile';
import { packMembers, unpackMembers, type PackedMember } from './group-carry';
import { packRecords, type PackedRecord } from './group-records-carry';
import type { GroupState as LegacyCarriedGroupState } from './legacy/group-state-v1';
import type { StepHealth, StepName } from './group-steps';
import type { LaunchReport } from '../adapters/temporal/instance-batch';

export interface GroupState {
  members: Record<string, Member>;
  nextSeq: number;
  spec?: GroupSpec;
  /** The group was removed from config: drain it to zero, then finish. */
  removed: boolean;
  /** Consecutive failed launches, for the creation backoff. */
  failures: number;
  backoffUntil?: number;
  /** The newest problem of a launch or an image (step failures are kept in `steps`). */
  lastError?: string;
  images: Record<string, CachedImage>;
  /** Each step's recent failures and when it may run again. */
  steps: Partial<Record<StepName, StepHealth>>;
  /** Members decided but whose workflow start is not confirmed yet: the next pass starts them again (same ids, idempotent). */
  unstarted: string[];
  /** Removals decided (or asked for) but not yet delivered to their instance workflows. */
  pendingRemovals: Removal[];
  /** Instance workflows that reported but are not members (started by a run whose state was lost): told to go. */
  strays: string[];
  /** Until the run has rebuilt its members from what exists, it decides nothing. */
  rebuilding: boolean;
  /** Reports heard while rebuilding, applied once the members are known. */
  heardWhileRebuilding: Record<string, InstanceUpdate>;
  /** Reconcile passes made by this run. */
  passes: number;
  /** What members were launched from, by version id (Member.launch): one entry per version still in use. */
  launches: LaunchVersion[];
  /** This run's last drift verdict per launch version (for the status query; not carried, recomputed each pass). */
  driftByVersion?: Record<number, DriftField[]>;
  /** Instance records to write (by instance id), when this run writes them (workflows/group-records.ts). Carried packed, bounded, from CARRY_RECORDS_PATCH on. */
  records?: Record<string, InstanceRecord>;
}

/** What crosses continue-as-new: members packed, nothing that belongs to one run only. */
export type CarriedGroupState = { version: 2; members: PackedMember[] } & Pick<
  GroupState,
  'nextSeq' | 'spec' | 'removed' | 'failures' | 'backoffUntil' | 'lastError' | 'images' | 'steps' | 'unstarted' | 'pendingRemovals' | 'strays'
> &
  Partial<Pick<GroupState, 'launches'>> & {
    /** Instance records queued but not yet written (workflows/group-records-carry.ts); absent when none, or from runs before CARRY_RECORDS_PATCH. */
    records?: PackedRecord[];
  };

/** The state carried by a group run from before fleet scale (members as objects). */
export type { GroupState as LegacyCarriedGroupState } from './legacy/group-state-v1';

/** Strays are kept only until told; a flood of them must not grow the state without bound. */
const STRAYS_KEPT = 1000;

export function initialGroupState(): GroupState {
  return {
    members: {},
    nextSeq: 1,
    removed: false,
    failures: 0,
    images: {},
    steps: {},
    unstarted: [],
    pendingRemovals: [],
    strays: [],
    rebuilding: true,
    heardWhileRebuilding: {},
    passes: 0,
    launches: [],
  };
}

function isLegacy(carried: CarriedGroupState | LegacyCarriedGroupState): carried is LegacyCarriedGroupState {
  return !Array.isArray(carried.members);
}

/** The state a run starts from: what the last run carried (either form), or nothing, in which case it rebuilds first. */
export function restoreGroupState(carried: CarriedGroupState | LegacyCarriedGroupState | undefined): GroupState {
  const state = initialGroupState();
  if (!carried) return state;
  const members = isLegacy(carried) ? structuredMembers(carried.members) : unpackMembers(carried.members);
  Object.assign(state, {
    members,
    nextSeq: carried.nextSeq,
    spec: carried.spec,
    removed: carried.removed,
    failures: carried.failures,
    backoffUntil: carried.backoffUntil,
    lastError: carried.lastError,
    images: carried.images ?? {},
    rebuilding: false,
  });
  if (!isLegacy(carried)) {
    Object.assign(state, {
      steps: carried.steps ?? {},
      unstarted: carried.unstarted ?? [],
      pendingRemovals: carried.pendingRemovals ?? [],
      strays: carried.strays ?? [],
      launches: carried.launches ?? [],
    });
  }
  return state;
}

function structuredMembers(members: Record<string, Member>): Record<string, Member> {
  const out: Record<string, Member> = {};
  for (const [id, m] of Object.entries(members)) {
    const { error: _error, createdAt: _createdAt, ...kept } = m;
    out[id] = kept;
  }
  return out;
}

/** `records`: carry the queued instance records too (runs from CARRY_RECORDS_PATCH on). */
export function carryGroupState(state: GroupState, options: { records?: boolean } = {}): CarriedGroupState {
  const records = options.records && state.records ? packRecords(state.records, state.members) : [];
  return {
    version: 2,
    members: packMembers(Object.values(state.members)),
    nextSeq: state.nextSeq,
    spec: state.spec,
    removed: state.removed,
    failures: state.failures,
    backoffUntil: state.backoffUntil,
    lastError: state.lastError,
    images: state.images,
    steps: state.steps,
    unstarted: state.unstarted,
    pendingRemovals: state.pendingRemovals,
    strays: state.strays,
    ...(state.launches.length > 0 ? { launches: state.launches } : {}),
    ...(records.length > 0 ? { records } : {}),
  };
}

/** Drops a member the group will not hear "terminated" from (EC2 shows it gone, or its workflow closed). */
export function forget(state: GroupState, instanceId: string): void {
  delete state.members[instanceId];
  state.unstarted = state.unstarted.filter((id) => id !== instanceId);
}

/** Asks an instance workflow that is not a member to leave (once; bounded). */
function addStray(state: GroupState, instanceId: string): void {
  if (state.strays.includes(instanceId) || state.strays.length >= STRAYS_KEPT) return;
  state.strays.push(instanceId);
}

/**
 * A report from an instance workflow. Only the group creates members: a report from an
 * instance it does not know (forgotten long ago, or started by a run whose state was
 * lost) never brings one back; that instance is asked to leave instead, so nothing
 * runs that no group counts. While the run is still rebuilding its members, reports
 * wait until it knows them.
 */
export function applyUpdate(state: GroupState, update: InstanceUpdate, now: number): void {
  if (state.rebuilding) {
    state.heardWhileRebuilding[update.instanceId] = { ...state.heardWhileRebuilding[update.instanceId], ...update };
    return;
  }
  const known = state.members[update.instanceId];
  if (update.phase === 'terminated' || update.phase === 'failed') {
    if (known) forget(state, update.instanceId);
    state.strays = state.strays.filter((id) => id !== update.instanceId);
    if (update.phase === 'failed' && known && !known.leaving) {
      state.failures++;
      state.backoffUntil = now + creationBackoffMs(state.failures);
      state.lastError = `instance ${update.instanceId}: ${update.error ?? 'failed'}`;
    }
    return;
  }
  if (!known) {
    addStray(state, update.instanceId);
    return;
  }
  // A launch still trying (no capacity yet) reports why, so `nstance groups` can say it.
  if (update.phase === 'provisioning' && update.error) state.lastError = `instance ${update.instanceId}: ${update.error}`;
  if (update.phase === 'in-service' || (update.phase === 'running' && known.phase === 'provisioning')) {
    state.failures = 0;
    state.backoffUntil = undefined;
    if (state.lastError?.startsWith('instance ')) state.lastError = undefined;
  }
  const { error: _error, ...report } = update;
  state.members[update.instanceId] = {
    ...known,
    ...report,
    leaving: known.leaving,
    lost: known.lost,
    replaceRequested: known.replaceRequested,
    replacing: known.replacing,
  };
  if (state.unstarted.length > 0) state.unstarted = state.unstarted.filter((id) => id !== update.instanceId);
}

/**
 * What the group's start batch launched and started `launchReported`: those workflows do not report running,
 * so the batch's answer counts as that report. A member that reported since (its agent registered first) or
 * is leaving keeps what it has.
 */
export function applyLaunched(state: GroupState, launched: Record<string, LaunchReport>, now: number): void {
  for (const [instanceId, report] of Object.entries(launched)) {
    const member = state.members[instanceId];
    if (member?.phase === 'provisioning' && !member.leaving) applyUpdate(state, { instanceId, phase: 'running', ...report }, now);
  }
}

/** The members found by a rebuild, then the reports heard meanwhile (now judged against them). */
export function finishRebuild(state: GroupState, members: Member[], now: number): void {
  state.members = {};
  let seq = 1;
  for (const m of members) state.members[m.instanceId] = { ...m, seq: seq++ };
  state.nextSeq = Math.max(state.nextSeq, seq);
  state.rebuilding = false;
  const heard = Object.values(state.heardWhileRebuilding);
  state.heardWhileRebuilding = {};
  for (const update of heard) applyUpdate(state, update, now);
}

export function desiredSize(state: GroupState): number {
  return state.removed || !state.spec ? 0 : state.spec.size;
}
