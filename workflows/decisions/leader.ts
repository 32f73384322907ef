/**
 * Pure decisions of the leader workflow: who leads next, whether an epoch is
 * stale, why a leadership ended, when to continue-as-new. No Temporal, no AWS,
 * no clock: the workflow passes everything in, so these are unit-tested alone.
 */

export interface Candidate {
  workerId: string;
  /** The EC2 instance the worker runs on: where the leader ENI goes. */
  ec2InstanceId?: string;
  /** Where this worker serves the agent API (host:port). */
  agentAddress?: string;
  /** Order of first announcement: the earliest live candidate is preferred. */
  seq: number;
  announcedAt: string;
  /** False once its stand-by or serve activity timed out (dead or partitioned). */
  alive: boolean;
  /** Set when the worker said it is shutting down: never chosen again until it re-announces. */
  leaving: boolean;
  lostAt?: string;
  /** Bumped by every announcement: a loss noticed for an older generation does not mark it dead. */
  generation: number;
}

export interface NextLeaderInput {
  candidates: readonly Candidate[];
  /** Not eligible this time (the leader being replaced). */
  exclude?: readonly string[];
  /** `nstance leader handoff --to`: chosen when it is live. */
  preferred?: string;
}

export function eligible(c: Candidate, exclude: readonly string[] = []): boolean {
  return c.alive && !c.leaving && !exclude.includes(c.workerId);
}

/**
 * The preferred worker if it is eligible, else the earliest-announced eligible
 * one (so the first worker to start leads, and handoffs are predictable).
 * When nothing else is eligible an excluded-but-live worker is better than no
 * leader at all (a one-worker shard re-elects itself).
 */
export function chooseNextLeader(input: NextLeaderInput): Candidate | undefined {
  const exclude = input.exclude ?? [];
  const live = input.candidates.filter((c) => eligible(c, exclude)).sort((a, b) => a.seq - b.seq);
  const preferred = live.find((c) => c.workerId === input.preferred);
  if (preferred) return preferred;
  if (live.length > 0) return live[0];
  return input.candidates.filter((c) => eligible(c)).sort((a, b) => a.seq - b.seq)[0];
}

/** A write stamped with `incoming` is refused when a newer epoch has already written. */
export function isStaleEpoch(incoming: number, current: number | undefined): boolean {
  return current !== undefined && incoming < current;
}

/** Parses an epoch tag value; anything unreadable counts as "no epoch yet". */
export function parseEpoch(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d+$/.test(text)) return undefined;
  return Number(text);
}

/** How a serve-as-leader activity ended, reduced to what the workflow needs. */
export interface ServeEnd {
  kind: 'completed' | 'cancelled' | 'timeout' | 'failed';
  /** For timeouts: HEARTBEAT, SCHEDULE_TO_START, START_TO_CLOSE. */
  timeoutType?: string;
  /** For failures: the ApplicationFailure type (LeaseLost, WorkerShutdown, ...). */
  failureType?: string;
}

export type HandoffReason =
  | 'initial'
  | 'heartbeat-timeout'
  | 'not-started'
  | 'lease-lost'
  | 'worker-shutdown'
  | 'resigned'
  | 'requested'
  | 'failed';

export function reasonForEnd(end: ServeEnd): HandoffReason {
  if (end.kind === 'timeout') return end.timeoutType === 'SCHEDULE_TO_START' ? 'not-started' : 'heartbeat-timeout';
  if (end.kind === 'cancelled') return 'requested';
  if (end.kind === 'completed') return 'resigned';
  if (end.failureType === 'LeaseLost') return 'lease-lost';
  if (end.failureType === 'WorkerShutdown') return 'worker-shutdown';
  return 'failed';
}

/**
 * Whether the worker whose leadership ended this way is still worth choosing:
 * a timeout means dead or partitioned; a lost lease or shutdown means it knows
 * it is out (it re-announces itself if it recovers).
 */
export function stillAliveAfter(end: ServeEnd): boolean {
  return end.kind === 'cancelled' || end.kind === 'completed';
}

export interface RunLimits {
  handoffsThisRun: number;
  maxHandoffsPerRun: number;
  historyLength: number;
  maxHistoryLength: number;
  suggested: boolean;
}

/** History is bounded by handoffs (its only growth) as well as by the server's own hint. */
export function shouldContinueAsNew(l: RunLimits): boolean {
  return l.suggested || l.handoffsThisRun >= l.maxHandoffsPerRun || l.historyLength >= l.maxHistoryLength;
}

export interface LeaderInfo {
  workerId: string;
  ec2InstanceId?: string;
  agentAddress?: string;
  epoch: number;
  since: string;
}

export interface HandoffSummary {
  from?: string;
  to: string;
  epoch: number;
  reason: HandoffReason;
  detectedAt: string;
  /** When EC2 showed the ENI attached to the new leader (absent when it was not moved). */
  attachedAt?: string;
  durationMs?: number;
  inUseRetries?: number;
  error?: string;
}

/**
 * The epoch a fresh run of the leader workflow (no carried state: after a terminate,
 * a failed run, or a start after the run closed) starts from: the newest epoch any
 * earlier run left on the leader-only writes. Starting lower would make every fenced
 * write of the new run (ENI epoch tag, leader record) fail with StaleEpoch.
 */
export function startingEpoch(seen: { record?: number; interfaceTag?: number }): number {
  return Math.max(0, seen.record ?? 0, seen.interfaceTag ?? 0);
}

/**
 * The leader's network is not (known to be) in place: the move (or the leader record
 * write after it) failed after the activity's own retries. The workflow tries again at
 * the same epoch, with a durable-timer backoff, for as long as that epoch leads.
 */
export interface NetworkRepair {
  epoch: number;
  /** Attempts so far, the handoff's own included. */
  attempts: number;
  /** Workflow time (ms) of the next attempt. */
  nextAttemptAt: number;
  error: string;
}

/** Backoff between repair attempts: 5 s, 10 s, 20 s, ... capped at 5 minutes (each attempt is itself retried by the activity). */
export function networkRetryDelayMs(attempts: number): number {
  return Math.min(300_000, 5_000 * 2 ** Math.max(0, Math.min(attempts - 1, 16)));
}

/** The repair to schedule after an attempt that failed with `error` (`attempts` counts it). */
export function nextRepair(epoch: number, attempts: number, error: string, now: number): NetworkRepair {
  return { epoch, attempts, error, nextAttemptAt: now + networkRetryDelayMs(attempts) };
}

export type HandoverOutcome = { done: true; to?: string; epoch?: number; error?: string } | { done: false };

/**
 * Whether a resigning leader (`self`, which led at `ownEpoch`) has handed over, as the
 * workflow reports it: another worker leads at a newer epoch and that handoff finished
 * (its summary is recorded: ENI attached, or an error saying why not); or the workflow
 * stepped this worker down with nobody to hand over to.
 */
export function handoverOutcome(status: Pick<LeaderStatus, 'leader' | 'lastHandoff' | 'lastError'>, self: string, ownEpoch: number): HandoverOutcome {
  const { leader, lastHandoff } = status;
  if (leader && leader.workerId !== self && leader.epoch > ownEpoch && lastHandoff?.epoch === leader.epoch) {
    return { done: true, to: leader.workerId, epoch: leader.epoch, error: lastHandoff.error };
  }
  if (!leader && status.lastError?.startsWith('handoff: no other live candidate')) return { done: true, error: status.lastError };
  return { done: false };
}

/** What `nstance leader` shows; read with the leaderStatus query. */
export interface LeaderStatus {
  shard: string;
  epoch: number;
  leader?: LeaderInfo;
  candidates: Candidate[];
  interfaceId?: string;
  heartbeatTimeoutMs: number;
  handoffs: number;
  lastHandoff?: HandoffSummary;
  lastError?: string;
  /** Set while the leader's network is not in place and the workflow keeps retrying. */
  networkRepair?: NetworkRepair;
}
