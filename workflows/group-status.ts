/**
 * What the group's status query answers: counts always, members by page. A group of
 * 5,000 must not answer `nstance groups` with 5,000 members (queries are payloads too).
 */
import type { DriftField, LaunchVersion, GroupDiagnostics, GroupRef, GroupRotation, GroupStatus, Member, StatusPage } from '../common/types';
import { countMembers } from './decisions/reconcile';

export const DEFAULT_PAGE_SIZE = 200;
/** A page is bounded whatever the caller asks. */
export const MAX_PAGE_SIZE = 1000;

export interface GroupView {
  members: Iterable<Member>;
  desired: number;
  configured: boolean;
  lastError?: string;
  backoffUntil?: number;
  diagnostics?: GroupDiagnostics;
  /** The hashed fields on which a member's launch differs from the group's current one (drift rotation). */
  driftOf?: (m: Member) => DriftField[] | undefined;
  /** False until this run has judged its members' drift (see GroupRotation.unjudged). */
  driftJudged?: boolean;
  launches?: LaunchVersion[];
}

export function statusOf(ref: GroupRef, view: GroupView, now: number, page: StatusPage = {}): GroupStatus {
  const all = [...view.members];
  const offset = Math.max(0, Math.floor(page.offset ?? 0));
  const limit = Math.min(MAX_PAGE_SIZE, Math.max(0, Math.floor(page.limit ?? DEFAULT_PAGE_SIZE)));
  const ids = page.instanceIds && new Set(page.instanceIds);
  const phases = page.phases && new Set(page.phases);
  // Counts only (every pass's current details, `nstance groups`): no need to order thousands of members.
  const selected = limit === 0 ? [] : all.filter((m) => (!ids || ids.has(m.instanceId)) && (!phases || phases.has(m.phase))).sort((a, b) => a.seq - b.seq);
  const status: GroupStatus = {
    ...ref,
    desired: view.desired,
    ...countMembers(all),
    unhealthy: countUnhealthy(all),
    total: all.length,
    members: selected.slice(offset, offset + limit).map((m) => {
      const drift = view.driftOf?.(m);
      return drift && drift.length > 0 ? { ...m, drift } : m;
    }),
    configured: view.configured,
    lastError: view.lastError,
    backoffUntil: view.backoffUntil !== undefined && view.backoffUntil > now ? new Date(view.backoffUntil).toISOString() : undefined,
    rotation: { ...rotationOf(all, view.driftOf), ...(view.driftJudged === false ? { unjudged: true as const } : {}) },
  };
  if (view.diagnostics) status.diagnostics = view.diagnostics;
  if (view.launches && view.launches.length > 0 && limit > 0) status.launches = view.launches;
  return status;
}

/**
 * What a rotation has left, over every member: `group status --wait` polls these counts instead of the
 * members. `driftOf` as the workflow knows it; a client holding paged members passes each one's `drift`.
 */
export function rotationOf(members: Iterable<Member>, driftOf: (m: Member) => DriftField[] | undefined = (m) => m.drift): GroupRotation {
  const fields = new Set<DriftField>();
  const replacing: GroupRotation['replacing'] = {};
  let drifted = 0;
  for (const m of members) {
    const drift = driftOf(m);
    // A member being replaced is counted there alone: counted twice, a rotation's progress would go back each
    // time the next member is flagged (`group status --wait` printed "-1/2").
    if (drift && drift.length > 0 && !m.leaving && !m.replacing) {
      drifted++;
      for (const f of drift) fields.add(f);
    }
    if (m.replacing) replacing[m.replacing.reason] = (replacing[m.replacing.reason] ?? 0) + 1;
  }
  return { drifted, driftFields: [...fields].sort(), replacing };
}

/** Members a rotation still has to replace (drifted, or being replaced now). */
export function rotationLeft(r: Pick<GroupRotation, 'drifted'> & { replacing: Partial<Record<string, number>> }): number {
  let left = r.drifted;
  for (const n of Object.values(r.replacing)) left += n ?? 0;
  return left;
}

/**
 * Whether a rotation is over: the counts are judged, nothing is drifted or being replaced, and the group
 * holds exactly its size, every member in service. Counts from a run that has not judged drift yet say
 * nothing about drift, however settled they look.
 */
export function rotationDone(live: Pick<GroupStatus, 'desired' | 'inService' | 'total'> & Pick<GroupRotation, 'drifted' | 'unjudged'> & { replacing: Partial<Record<string, number>> }): boolean {
  return !live.unjudged && rotationLeft(live) === 0 && live.inService === live.desired && live.total === live.desired;
}

const GONE_PHASES = new Set(['terminated', 'failed']);

function countUnhealthy(members: readonly Member[]): number {
  let n = 0;
  for (const m of members) if (m.health === 'unhealthy' && !m.leaving && !GONE_PHASES.has(m.phase)) n++;
  return n;
}

/** The Web UI's "current details" line: what the group is at, and why it is stuck if it is. */
export function currentDetails(status: GroupStatus, rebuilding = status.diagnostics?.rebuilding ?? false): string {
  const unhealthy = status.unhealthy ? ` · unhealthy ${status.unhealthy}` : '';
  const line = `desired ${status.desired} · running ${status.running} (in service ${status.inService}) · pending ${status.pending} · draining ${status.draining}${unhealthy}`;
  const waiting = rebuilding ? '\n\nrebuilding its members from visibility and EC2 before deciding anything' : '';
  return `${line}${waiting}${status.lastError ? `\n\n**last error:** ${status.lastError}` : ''}`;
}
