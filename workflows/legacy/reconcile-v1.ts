/**
 * The reconcile decisions of the group workflow before fleet scale, frozen for the runs
 * that still execute workflows/legacy/group-v1.ts (see there). Do not change.
 */
import type { Member, Phase, RemovalReason } from '../../common/types';
import { mustDrainBy } from '../decisions/notice';

export interface ReconcileInput {
  desired: number;
  members: Member[];
  /** Workflow time in ms. */
  now: number;
  /** Creation is paused until then after failures, so a broken config does not spin. */
  backoffUntil?: number;
  /** The sequence number the next created member will get. */
  nextSeq: number;
  /**
   * The group's drain timeout. A member whose termination notice falls due sooner is
   * drained at once, replacement or not: a drain cut short by the host going away
   * drops connections. Unset: only a deadline already reached counts as that close.
   */
  drainTimeoutMs?: number;
}

export type { RemovalReason };

export interface Removal {
  instanceId: string;
  reason: RemovalReason;
  /** Drain first (deregister from load balancers, wait) or terminate at once. */
  drain: boolean;
}

/** A member being replaced, and the creation sequence from which replacements for it count. */
export interface Replacing {
  reason: RemovalReason;
  sinceSeq: number;
}

export interface Flag {
  instanceId: string;
  replacing: Replacing;
}

export interface ReconcileDecision {
  /** Members that start being replaced now: the group records these. */
  flag: Flag[];
  create: number;
  remove: Removal[];
  /** True when creation was wanted but held back by the backoff. */
  heldBack: boolean;
  /**
   * Workflow time at which a termination notice, still far enough off to wait for the
   * replacement today, must be drained regardless: the group decides again by then.
   */
  recheckAt?: number;
}

const GONE: ReadonlySet<Phase> = new Set(['terminated', 'failed']);
const PENDING: ReadonlySet<Phase> = new Set(['provisioning']);
const LEAVING: ReadonlySet<Phase> = new Set(['draining', 'terminating']);

/** Counts toward the group's size: not gone and not on its way out. */
export function isActive(m: Member): boolean {
  return !m.leaving && !GONE.has(m.phase) && !LEAVING.has(m.phase);
}

export function byAge(a: Member, b: Member): number {
  return a.seq - b.seq;
}

/** Why a member must be replaced (create-before-destroy), if it must. */
export function replacementReason(m: Member): RemovalReason | undefined {
  // The deadline outlives the health status (a later unhealthy/healthy transition does not cancel a spot interruption).
  if (m.health === 'termination-notice' || m.noticeDeadline !== undefined) return 'termination-notice';
  if (m.health === 'unhealthy') return 'unhealthy';
  if (m.replaceRequested) return 'replace-requested';
  if (m.expiry === 'forced') return 'expired-forced';
  return undefined;
}

/** Ready to take over from a member being replaced. */
function isReady(m: Member): boolean {
  return m.phase === 'in-service';
}

export function decideReconcile(input: ReconcileInput): ReconcileDecision {
  const alive = input.members.filter((m) => !GONE.has(m.phase));
  const leaving = alive.filter((m) => !isActive(m));
  const active = alive.filter(isActive).sort(byAge);
  const remove: Removal[] = [];
  const flag: Flag[] = [];

  // Stopped or terminated behind our back: nothing to drain, replace at once.
  for (const m of active.filter((m) => m.lost)) remove.push({ instanceId: m.instanceId, reason: 'lost', drain: false });
  const live = active.filter((m) => !m.lost);

  const replacing = new Map<string, Replacing>();
  for (const m of live) {
    if (m.replacing) replacing.set(m.instanceId, m.replacing);
    else {
      const reason = replacementReason(m);
      if (reason) flag.push({ instanceId: m.instanceId, replacing: { reason, sinceSeq: input.nextSeq } });
    }
  }
  for (const f of flag) replacing.set(f.instanceId, f.replacing);
  // Eligible expiry is opportunistic: one at a time, oldest first, only in a calm group.
  const calm = leaving.length === 0 && replacing.size === 0 && live.every(isReady);
  const eligible = live.find((m) => m.expiry === 'eligible');
  if (calm && eligible && live.length >= input.desired) {
    const f = { instanceId: eligible.instanceId, replacing: { reason: 'expired-eligible' as const, sinceSeq: input.nextSeq } };
    flag.push(f);
    replacing.set(f.instanceId, f.replacing);
  }

  const healthy = live.filter((m) => !replacing.has(m.instanceId));
  const missing = input.desired - healthy.length;
  let create = 0;
  let heldBack = false;
  if (missing > 0) {
    // While replacing, one over size is allowed (create-before-destroy). Members still
    // draining run in EC2 too, so they use up that one slot until they are gone; lost
    // ones (stopped or terminated) do not.
    const surge = replacing.size > 0;
    const cap = input.desired + (surge ? 1 : 0);
    const occupied = live.length + (surge ? leaving.filter((m) => !m.lost).length : 0);
    create = Math.max(0, Math.min(missing, cap - occupied));
    if (create > 0 && input.backoffUntil !== undefined && input.now < input.backoffUntil) {
      create = 0;
      heldBack = true;
    }
  }

  // A member being replaced goes when a replacement made for it serves, or when the group serves its size without it,
  // or when its termination notice is too close to wait: draining before the host is reclaimed beats serving one more.
  let serving = live.filter(isReady).length;
  const used = new Set<string>();
  let recheckAt: number | undefined;
  for (const m of live.filter((x) => replacing.has(x.instanceId))) {
    const why = replacing.get(m.instanceId) as Replacing;
    const replacement = healthy.find((h) => isReady(h) && h.seq >= why.sinceSeq && !used.has(h.instanceId));
    const servesWithout = serving - (isReady(m) ? 1 : 0) >= input.desired;
    const drainBy = mustDrainBy(m.noticeDeadline, input.drainTimeoutMs ?? 0);
    const urgent = drainBy !== undefined && input.now >= drainBy;
    if (!isReady(m) || replacement || servesWithout || urgent) {
      if (replacement && !servesWithout) used.add(replacement.instanceId);
      if (isReady(m)) serving--;
      remove.push({ instanceId: m.instanceId, reason: urgent ? 'termination-notice' : why.reason, drain: true });
    } else if (drainBy !== undefined) {
      recheckAt = Math.min(recheckAt ?? drainBy, drainBy);
    }
  }
  // Scale down: oldest first; the newest carry the newest image and config.
  const excess = healthy.length - input.desired;
  for (const m of healthy.slice(0, Math.max(0, excess))) remove.push({ instanceId: m.instanceId, reason: 'scale-down', drain: true });

  return { create, remove, heldBack, flag, ...(recheckAt === undefined ? {} : { recheckAt }) };
}

/** Delay before creating again after `failures` consecutive failed launches: 5 s doubling, capped at 5 min. */
export function creationBackoffMs(failures: number): number {
  if (failures <= 0) return 0;
  return Math.min(5_000 * 2 ** (failures - 1), 300_000);
}

/** A short, unique-enough instance id: the template kind, then base-32 from workflow-deterministic randomness. */
export function newInstanceId(kind: string, random: () => number): string {
  const alphabet = '0123456789abcdefghjkmnpqrstvwxyz';
  let suffix = '';
  for (let i = 0; i < 12; i++) suffix += alphabet[Math.floor(random() * alphabet.length)];
  return `${kind}-${suffix}`;
}
