/**
 * Pure reconcile decisions for a group: no Temporal, no AWS, no clock of their
 * own. The group workflow feeds them its state and carries out the result.
 */
import type { Member, Phase, RemovalReason } from '../../common/types';
import type { ReplacementBudget } from './budget';
import { mustDrainBy } from './notice';

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
  budget: ReplacementBudget;
  /** At most this many creations per decision (one batch per pass keeps a pass's history the same size at any N). */
  createLimit?: number;
  /**
   * Members launched from something other than what the group launches now (workflows/decisions/drift.ts).
   * They roll like eligible expiry: oldest first, a rolling batch (max_surge + max_unavailable) at a time.
   */
  drifted?: ReadonlySet<string>;
  /**
   * Honour Member.tookOver: a replacement that took over from one member in an earlier pass counts for no other.
   * Without it, once that member had left, the same replacement let a second one go (runs before TAKEOVER_ONCE_PATCH).
   */
  takeOverOnce?: boolean;
}

export type { RemovalReason };

export interface Removal {
  instanceId: string;
  reason: RemovalReason;
  /** Drain first (deregister from load balancers, wait) or terminate at once. */
  drain: boolean;
  /** More about the reason, for the audit log (e.g. which hashed fields drifted). */
  detail?: string;
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
  /** Members no longer to be replaced (unhealthy, then healthy again before they were removed). */
  unflag: string[];
  create: number;
  remove: Removal[];
  /** Replacements that took over from a member removed now: the group marks them (Member.tookOver). */
  tookOver: string[];
  /** True when creation was wanted but held back by the backoff. */
  heldBack: boolean;
  /** True when more creations are wanted than createLimit allowed: the group decides again at once. */
  moreToCreate: boolean;
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

/** Replaced for health alone and healthy again: nothing to replace any more. */
function recovered(m: Member): boolean {
  return m.replacing?.reason === 'unhealthy' && replacementReason(m) === undefined;
}

/** Reasons that roll (a batch at a time, only while nothing else is replaced) rather than being flagged at once. */
const ROLLING: ReadonlySet<RemovalReason> = new Set(['expired-eligible', 'drift']);

/**
 * Which members start (or stop) being replaced. Every reason but health is flagged at once:
 * creation is bounded by the surge anyway. Health alone is capped (budget.healthLimit), so
 * that agents all going quiet at once (the agent API unreachable) replaces a few, not the
 * fleet. Drift and eligible expiry roll: oldest first, at most a rolling batch in flight
 * (being replaced or still leaving), and only while nothing else is being replaced and every
 * other member serves.
 */
function chooseReplacements(live: Member[], leaving: Member[], input: ReconcileInput) {
  const flag: Flag[] = [];
  const unflag: string[] = [];
  const replacing = new Map<string, Replacing>();
  let unhealthyInFlight = 0;
  for (const m of live) {
    if (!m.replacing) continue;
    // A drift replacement not started yet is called off when the spec came back to what the member was launched from.
    if (recovered(m) || (m.replacing.reason === 'drift' && input.drifted !== undefined && !input.drifted.has(m.instanceId))) {
      unflag.push(m.instanceId);
      continue;
    }
    replacing.set(m.instanceId, m.replacing);
    if (m.replacing.reason === 'unhealthy') unhealthyInFlight++;
  }
  const flagNow = (m: Member, reason: RemovalReason) => {
    const f = { instanceId: m.instanceId, replacing: { reason, sinceSeq: input.nextSeq } };
    flag.push(f);
    replacing.set(m.instanceId, f.replacing);
  };
  for (const m of live) {
    if (m.replacing) continue;
    const reason = replacementReason(m);
    if (!reason) continue;
    if (reason === 'unhealthy') {
      if (unhealthyInFlight >= input.budget.healthLimit) continue;
      unhealthyInFlight++;
    }
    flagNow(m, reason);
  }
  const onlyRolling = [...replacing.values()].every((r) => ROLLING.has(r.reason));
  // Replacements still booting are not ready, but they are part of the roll, not a reason to stop it.
  const unready = live.filter((m) => !replacing.has(m.instanceId) && !isReady(m)).length;
  if (onlyRolling && unready <= replacing.size && live.length >= input.desired) {
    const room = input.budget.rollingBatch - replacing.size - leaving.length;
    const drifted = input.drifted ?? new Set<string>();
    const due = live.filter((x) => !replacing.has(x.instanceId) && (drifted.has(x.instanceId) || x.expiry === 'eligible'));
    // A member both drifted and eligible is replaced for drift: that is what a plan and the audit log say.
    for (const m of due.slice(0, Math.max(0, room))) flagNow(m, drifted.has(m.instanceId) ? 'drift' : 'expired-eligible');
  }
  return { flag, unflag, replacing };
}

export function decideReconcile(input: ReconcileInput): ReconcileDecision {
  const alive = input.members.filter((m) => !GONE.has(m.phase));
  const leaving = alive.filter((m) => !isActive(m));
  const active = alive.filter(isActive).sort(byAge);
  const remove: Removal[] = [];

  // Stopped or terminated behind our back: nothing to drain, replace at once.
  for (const m of active.filter((m) => m.lost)) remove.push({ instanceId: m.instanceId, reason: 'lost', drain: false });
  const live = active.filter((m) => !m.lost);
  const { flag, unflag, replacing } = chooseReplacements(live, leaving, input);

  const healthy = live.filter((m) => !replacing.has(m.instanceId));
  const missing = input.desired - healthy.length;
  let create = 0;
  let heldBack = false;
  let moreToCreate = false;
  if (missing > 0) {
    // EC2 never holds more than size + surge: members still draining run in EC2 too, lost ones do not.
    const occupied = live.length + leaving.filter((m) => !m.lost).length;
    create = Math.max(0, Math.min(missing, input.desired + input.budget.surge - occupied));
    if (input.createLimit !== undefined && create > input.createLimit) {
      create = input.createLimit;
      moreToCreate = true;
    }
    if (create > 0 && input.backoffUntil !== undefined && input.now < input.backoffUntil) {
      create = 0;
      heldBack = true;
      moreToCreate = false;
    }
  }

  // A member being replaced goes when a replacement made for it serves, or when the group serves enough without it
  // (its size less max_unavailable), or when its termination notice is too close to wait: draining before the host
  // is reclaimed beats serving one more.
  let serving = live.filter(isReady).length;
  const mustServe = input.desired - input.budget.unavailable;
  const used = new Set<string>();
  let recheckAt: number | undefined;
  const candidates = live.filter((x) => replacing.has(x.instanceId));
  const gone = new Set<string>();
  const consider = (m: Member, mayGoWithout: boolean) => {
    const why = replacing.get(m.instanceId) as Replacing;
    const replacement = healthy.find((h) => isReady(h) && h.seq >= why.sinceSeq && !used.has(h.instanceId) && !(input.takeOverOnce && h.tookOver));
    const servesWithout = mayGoWithout && serving - (isReady(m) ? 1 : 0) >= mustServe;
    const drainBy = mustDrainBy(m.noticeDeadline, input.drainTimeoutMs ?? 0);
    const urgent = drainBy !== undefined && input.now >= drainBy;
    if (!isReady(m) || replacement || servesWithout || urgent) {
      // Each replacement takes over from one member only, whichever rule let that member go.
      if (replacement) used.add(replacement.instanceId);
      if (isReady(m)) serving--;
      gone.add(m.instanceId);
      remove.push({ instanceId: m.instanceId, reason: urgent ? 'termination-notice' : why.reason, drain: true });
    } else if (mayGoWithout && drainBy !== undefined) {
      recheckAt = Math.min(recheckAt ?? drainBy, drainBy);
    }
  };
  // Members whose replacement serves go first: the serving count must not let one go without a replacement on the
  // strength of replacements that others then take over (seen in the replacement bench: 59 of 60 in service).
  if (input.takeOverOnce) for (const m of candidates) consider(m, false);
  for (const m of candidates) if (!gone.has(m.instanceId)) consider(m, true);
  // Scale down: launches not serving yet go before members that serve (a spare replacement is cancelled rather than a
  // recovered member drained); within each, drifted members before current ones, then the oldest first (the newest
  // carry the newest image and config).
  const excess = healthy.length - input.desired;
  if (excess > 0) {
    const stale = (m: Member) => input.drifted?.has(m.instanceId) ?? false;
    const order = [
      ...healthy.filter((m) => !isReady(m) && stale(m)),
      ...healthy.filter((m) => !isReady(m) && !stale(m)),
      ...healthy.filter((m) => isReady(m) && stale(m)),
      ...healthy.filter((m) => isReady(m) && !stale(m)),
    ];
    for (const m of order.slice(0, excess)) remove.push({ instanceId: m.instanceId, reason: 'scale-down', drain: true });
  }

  return { create, remove, tookOver: [...used], heldBack, moreToCreate, flag, unflag, ...(recheckAt === undefined ? {} : { recheckAt }) };
}

export interface GroupCounts {
  running: number;
  pending: number;
  draining: number;
  inService: number;
}

export function countMembers(members: Iterable<Member>): GroupCounts {
  let running = 0;
  let pending = 0;
  let draining = 0;
  let inService = 0;
  for (const m of members) {
    if (GONE.has(m.phase)) continue;
    if (m.leaving || LEAVING.has(m.phase)) draining++;
    else if (PENDING.has(m.phase)) pending++;
    else {
      running++;
      if (m.phase === 'in-service') inService++;
    }
  }
  return { running, pending, draining, inService };
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
