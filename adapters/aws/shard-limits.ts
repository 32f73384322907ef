/**
 * EC2's token buckets are the account's (per region), not a process's: K workers of a shard that each
 * held a whole bucket would spend K times the limit. So each worker holds 1/K of every bucket, capacity
 * and refill, K being the shard's live workers as this worker last counted them. The shares then sum to
 * at most the account's bucket:
 *
 * - a worker that sees K grow gives up the tokens above its new share at once;
 * - a worker that sees K shrink grows its share by refilling, never by a jump;
 * - a worker that joins a shard where others run starts empty and accrues nothing until its peers have
 *   counted it (their refresh interval, plus a margin), so it never spends tokens a peer still holds;
 * - a worker that starts alone starts full, unless a poller under its own identity from before it
 *   started is still listed (its predecessor, which may have just spent the burst): then it starts empty.
 *
 * Temporal's task-queue-wide activity rate limit (maxTaskQueueActivitiesPerSecond) would be shard-wide
 * by construction, but it is a plain rate with no burst: it cannot express EC2's 1,000-instance
 * RunInstances burst (a scale-up of 500 would take 250 s at 2/s), and it counts activities, not the
 * requests or instances inside them. Hence buckets shared by counting the shard's workers.
 */
import { systemClock, type Clock, type ClockTimer } from './clock';
import { EC2_ACCOUNT_LIMITS, TokenBucket, type BucketLimit, type Ec2RateLimits } from './token-bucket';

/** What a worker knows of the other workers of its shard. */
export interface ShardWorkersView {
  /** Live workers of the shard other than this one. */
  others: number;
  /** A poller under this worker's own identity, last seen before this worker started (a predecessor). */
  predecessor: boolean;
}

export interface TaskQueuePoller {
  identity: string;
  /** When the poller last polled, if Temporal says. */
  lastAccessMs?: number;
}

/**
 * A poller counts as live this long after its last poll. An idle worker's long polls come back (and
 * poll again) within about a minute, so a live worker is never missed; a dead one is counted a little
 * longer than needed, which only makes the others' shares smaller for a while.
 */
export const POLLER_LIVE_MS = 2 * 60_000;

/** This worker's view of its shard from the pollers of the shard's activity task queue. */
export function shardWorkersView(pollers: TaskQueuePoller[], self: { identity: string; startedAtMs: number }, nowMs: number, liveMs = POLLER_LIVE_MS): ShardWorkersView {
  const live = pollers.filter((p) => p.lastAccessMs === undefined || nowMs - p.lastAccessMs <= liveMs);
  const others = new Set(live.filter((p) => p.identity !== self.identity).map((p) => p.identity));
  const predecessor = live.some((p) => p.identity === self.identity && p.lastAccessMs !== undefined && p.lastAccessMs < self.startedAtMs);
  return { others: others.size, predecessor };
}

/** When the workers cannot be counted at all: as if one other worker ran (half a share, start empty). */
export const UNKNOWN_SHARD_VIEW: ShardWorkersView = { others: 1, predecessor: true };

export interface ShardEc2LimitsOptions {
  /**
   * How long a worker joining a running shard accrues nothing: at least the interval at which its peers
   * count the shard's workers, so every peer has given up its extra share before this one spends any.
   */
  joinGraceMs: number;
  clock?: Clock;
  /** The account's buckets (EC2's defaults unless the account's limits were raised). */
  account?: Readonly<Record<keyof Ec2RateLimits, BucketLimit>>;
}

const BUCKETS = ['runInstances', 'describe', 'terminate', 'mutate'] as const;

export class ShardEc2Limits implements Ec2RateLimits {
  readonly runInstances: TokenBucket;
  readonly describe: TokenBucket;
  readonly terminate: TokenBucket;
  readonly mutate: TokenBucket;
  private shareOf: number | undefined;
  private readonly clock: Clock;
  private readonly account: Readonly<Record<keyof Ec2RateLimits, BucketLimit>>;

  constructor(private readonly options: ShardEc2LimitsOptions) {
    this.clock = options.clock ?? systemClock;
    this.account = options.account ?? EC2_ACCOUNT_LIMITS;
    // Frozen (empty, not refilling) until the first count: nothing is spent before this worker knows
    // how many share the shard.
    const frozen = (limit: BucketLimit) => {
      const bucket = new TokenBucket({ ...limit, initialTokens: 0, clock: this.clock });
      bucket.resize(limit, { accrueFrom: Infinity });
      return bucket;
    };
    this.runInstances = frozen(this.account.runInstances);
    this.describe = frozen(this.account.describe);
    this.terminate = frozen(this.account.terminate);
    this.mutate = frozen(this.account.mutate);
  }

  /** K, the number of workers this worker last counted (itself included); undefined before the first count. */
  get workers(): number | undefined {
    return this.shareOf;
  }

  /** Applies this worker's latest count of the shard's workers. */
  update(view: ShardWorkersView): void {
    const k = Math.max(1, Math.floor(view.others) + 1);
    const first = this.shareOf === undefined;
    if (!first && k === this.shareOf) return;
    const now = this.clock.now();
    for (const name of BUCKETS) {
      const account = this.account[name];
      const share = { capacity: account.capacity / k, refillPerSecond: account.refillPerSecond / k };
      if (!first) {
        this.bucket(name).resize(share);
      } else if (view.others === 0 && !view.predecessor) {
        this.bucket(name).resize(share, { tokens: share.capacity, accrueFrom: now });
      } else {
        this.bucket(name).resize(share, { tokens: 0, accrueFrom: view.others > 0 ? now + this.options.joinGraceMs : now });
      }
    }
    this.shareOf = k;
  }

  private bucket(name: (typeof BUCKETS)[number]): TokenBucket {
    return this[name];
  }
}

export interface ShardWorkerFollowerOptions {
  /** This worker's view of its shard (a Temporal DescribeTaskQueue, in a worker). */
  /** Counts the shard's workers; the signal aborts a count still in flight when the follower stops. */
  count: (signal: AbortSignal) => Promise<ShardWorkersView>;
  /** How often the workers are counted again. */
  intervalMs: number;
  log?: (line: string) => void;
  clock?: Clock;
}

export interface ShardWorkerFollower {
  /** Settles once the first count was applied (or failed, and the cautious view was applied instead). */
  ready: Promise<void>;
  stop(): void;
}

/** Keeps the limits' share current: counts now, then every interval, until stopped. */
export function followShardWorkers(limits: ShardEc2Limits, options: ShardWorkerFollowerOptions): ShardWorkerFollower {
  let stopped = false;
  let timer: ClockTimer | undefined;
  // A count left in flight (or in its retry backoff) past stop would outlive the connection it uses.
  const abort = new AbortController();
  const clock = options.clock ?? systemClock;
  const log = options.log ?? (() => undefined);
  const once = async () => {
    try {
      const view = await options.count(abort.signal);
      if (stopped) return;
      const before = limits.workers;
      limits.update(view);
      if (before !== limits.workers) log(`EC2 limits: ${limits.workers} worker(s) share the shard's buckets; this one holds 1/${limits.workers}`);
    } catch (err) {
      if (stopped) return;
      // Never counted: assume company rather than spend a whole bucket another worker may hold too.
      if (limits.workers === undefined) limits.update(UNKNOWN_SHARD_VIEW);
      log(`EC2 limits: could not count the shard's workers (keeping 1/${limits.workers}): ${(err as Error).message}`);
    }
  };
  const loop = () => {
    if (stopped) return;
    timer = clock.setTimeout(() => void once().finally(loop), options.intervalMs);
    // Counting never keeps a process alive on its own.
    (timer as { unref?: () => void }).unref?.();
  };
  const ready = once().finally(loop);
  return {
    ready,
    stop() {
      stopped = true;
      abort.abort();
      if (timer !== undefined) clock.clearTimeout(timer);
    },
  };
}
