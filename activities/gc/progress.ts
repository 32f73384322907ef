import type { OrphanKind, Suspect } from './suspects';

export interface Orphan {
  ec2InstanceId: string;
  instanceId?: string;
  launchedAt?: string;
  why: string;
  /** Absent in progress heartbeated by code from before kinds (an orphan of no running workflow then). */
  kind?: OrphanKind;
}

/** What a pass has done so far: shown in its heartbeats (the Web UI's pending activity) and logged at the end. */
export interface GcCounts {
  /** DescribeInstances pages read, and the live tagged instances they held. */
  ec2Pages: number;
  tagged: number;
  /** Visibility pages read, and the running instance workflows they listed. */
  ownerPages: number;
  owners: number;
  /** Tagged instances younger than the grace, and those visibility shows owned: neither looked at further. */
  young: number;
  owned: number;
  /** Suspects found by the listings, and DescribeWorkflowExecution calls made to confirm them. */
  suspects: number;
  described: number;
  /** Suspects confirmed not owned. */
  orphans: number;
  /** Orphans handled so far (terminated and audited, or refused by EC2), in order, and TerminateInstances requests. */
  handled: number;
  terminated: number;
  refused: number;
  terminateCalls: number;
}

/**
 * A pass's heartbeat details: enough for a retried attempt to go on where the last one stopped.
 * - listing: nothing worth keeping yet (a retry lists again).
 * - confirming: both listings are done; `pending` suspects are still to be described.
 * - terminating: every suspect is decided; orphans[0, counts.handled) are done.
 * Confirmed orphans stay orphans (see whyNotOwned), so a retry acts on them without asking again.
 */
export interface GcProgress {
  phase: 'listing' | 'confirming' | 'terminating' | 'done';
  counts: GcCounts;
  pending: Suspect[];
  orphans: Orphan[];
  /** EC2 ids of orphans EC2 refused to terminate: kept out of the result and the audit. */
  refused: string[];
}

export function startProgress(): GcProgress {
  return {
    phase: 'listing',
    counts: { ec2Pages: 0, tagged: 0, ownerPages: 0, owners: 0, young: 0, owned: 0, suspects: 0, described: 0, orphans: 0, handled: 0, terminated: 0, refused: 0, terminateCalls: 0 },
    pending: [],
    orphans: [],
    refused: [],
  };
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The progress a previous attempt heartbeated, when it got past the listings; undefined to start
 * afresh (first attempt, still listing, or details of another shape, e.g. from older code).
 */
export function resumableProgress(details: unknown): GcProgress | undefined {
  if (!isRecord(details) || !isRecord(details.counts)) return undefined;
  if (details.phase !== 'confirming' && details.phase !== 'terminating' && details.phase !== 'done') return undefined;
  if (!Array.isArray(details.pending) || !Array.isArray(details.orphans) || !Array.isArray(details.refused)) return undefined;
  const counts = { ...startProgress().counts };
  for (const key of Object.keys(counts) as (keyof GcCounts)[]) {
    const value = details.counts[key];
    if (typeof value === 'number' && Number.isFinite(value)) counts[key] = value;
  }
  return { ...(details as unknown as GcProgress), counts };
}

/**
 * Heartbeats a pass's progress at most once per `minIntervalMs` unless forced: the details hold the
 * pending suspects and the orphans, and a large pass should not spend its time encoding them (the
 * SDK throttles what reaches the server anyway). Each heartbeat carries a snapshot, since the pass
 * goes on changing its progress while the SDK encodes it.
 */
export class ProgressReporter {
  private lastDetailsAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly heartbeat: (details: GcProgress) => void,
    private readonly minIntervalMs = 1_000,
    private readonly now: () => number = Date.now,
  ) {}

  report(progress: GcProgress, force = false): void {
    const t = this.now();
    if (!force && t - this.lastDetailsAt < this.minIntervalMs) return;
    this.lastDetailsAt = t;
    this.heartbeat({ ...progress, counts: { ...progress.counts }, pending: [...progress.pending], orphans: [...progress.orphans], refused: [...progress.refused] });
  }
}
