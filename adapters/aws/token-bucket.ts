import { systemClock, type Clock, type ClockTimer } from './clock';

/**
 * Client-side token bucket mirroring EC2's own request buckets, so a large
 * scale-up waits here instead of tripping RequestLimitExceeded.
 */
export interface BucketLimit {
  capacity: number;
  refillPerSecond: number;
}

/** What callers of EC2 wait on before each request. */
export interface RateLimiter {
  /**
   * Waits until `count` tokens are available, then takes them; callers are served in order. A count above
   * the capacity is paid in full buckets, one after the other, so it waits as long as EC2 would make it.
   * Rejects with the signal's reason when `signal` aborts first (the tokens it had already paid are spent).
   */
  take(count?: number, signal?: AbortSignal): Promise<void>;
}

export interface TokenBucketOptions extends BucketLimit {
  /** Tokens at the start; a full bucket unless set. */
  initialTokens?: number;
  clock?: Clock;
  /** Shorthand for a clock that only overrides `now` (timers stay real). */
  now?: () => number;
}

interface Waiter {
  remaining: number;
  resolve: () => void;
  reject: (reason: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

/** Below this, a shortfall is floating-point noise, not a missing token. */
const EPSILON = 1e-9;

export class TokenBucket implements RateLimiter {
  private limit: BucketLimit;
  private tokens: number;
  private last: number;
  /** No tokens accrue before this instant (a worker joining a shard waits until its peers have made room). */
  private accrueFrom = -Infinity;
  private readonly clock: Clock;
  private readonly waiters: Waiter[] = [];
  private timer: ClockTimer | undefined;

  constructor(options: TokenBucketOptions) {
    this.clock = options.now ? { ...systemClock, now: options.now } : (options.clock ?? systemClock);
    this.limit = { capacity: options.capacity, refillPerSecond: options.refillPerSecond };
    this.tokens = Math.min(options.initialTokens ?? options.capacity, options.capacity);
    this.last = this.clock.now();
  }

  get capacity(): number {
    return this.limit.capacity;
  }

  get refillPerSecond(): number {
    return this.limit.refillPerSecond;
  }

  /** Tokens that could be taken right now. */
  available(): number {
    this.refill();
    return this.tokens;
  }

  /** How many callers wait for tokens. */
  get waiting(): number {
    return this.waiters.length;
  }

  /**
   * Changes the bucket's size and refill (a worker's share of the shard's bucket). Tokens above the new
   * capacity are given up at once; `tokens` sets the count outright, `accrueFrom` holds the refill until then.
   */
  resize(limit: BucketLimit, options: { tokens?: number; accrueFrom?: number } = {}): void {
    this.refill();
    this.limit = { ...limit };
    if (options.accrueFrom !== undefined) this.accrueFrom = options.accrueFrom;
    this.tokens = Math.max(0, Math.min(options.tokens ?? this.tokens, limit.capacity));
    this.pump();
  }

  take(count = 1, signal?: AbortSignal): Promise<void> {
    if (!(count >= 0)) return Promise.reject(new RangeError(`cannot take ${count} tokens`));
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { remaining: count, resolve, reject, signal };
      if (signal) {
        waiter.onAbort = () => {
          const at = this.waiters.indexOf(waiter);
          if (at < 0) return;
          this.waiters.splice(at, 1);
          reject(signal.reason);
          // The head may have changed: the next caller may be served now.
          this.pump();
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.waiters.push(waiter);
      this.pump();
    });
  }

  /** Serves waiters in order while tokens last, then sleeps until the head's next piece has accrued. */
  private pump(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.refill();
    while (this.waiters.length > 0 && this.limit.capacity > 0) {
      const head = this.waiters[0];
      const piece = Math.min(head.remaining, this.limit.capacity);
      if (this.tokens + EPSILON < piece) break;
      this.tokens = Math.max(0, this.tokens - piece);
      head.remaining -= piece;
      if (head.remaining > EPSILON) continue;
      this.waiters.shift();
      if (head.onAbort) head.signal?.removeEventListener('abort', head.onAbort);
      head.resolve();
    }
    const head = this.waiters[0];
    if (!head || this.limit.capacity <= 0 || this.limit.refillPerSecond <= 0) return;
    const now = this.clock.now();
    const piece = Math.min(head.remaining, this.limit.capacity);
    const startsIn = Math.max(0, this.accrueFrom - now);
    const waitMs = startsIn + ((piece - this.tokens) / this.limit.refillPerSecond) * 1000;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.pump();
    }, Math.max(1, Math.ceil(waitMs)));
  }

  private refill(): void {
    const now = this.clock.now();
    const from = Math.max(this.last, this.accrueFrom);
    if (now > from) this.tokens = Math.min(this.limit.capacity, this.tokens + ((now - from) / 1000) * this.limit.refillPerSecond);
    this.last = Math.max(this.last, now);
  }
}

/** EC2's request buckets, as the activities and garbage collection use them. */
export interface Ec2RateLimits {
  /** Counted per instance launched. */
  runInstances: RateLimiter;
  /** Every Describe* request. */
  describe: RateLimiter;
  /** Counted per instance terminated. */
  terminate: RateLimiter;
  /** Other mutating requests (tags, network interfaces). */
  mutate: RateLimiter;
}

/** EC2's documented default buckets, per account and region. */
export const EC2_ACCOUNT_LIMITS: Readonly<Record<keyof Ec2RateLimits, BucketLimit>> = {
  runInstances: { capacity: 1000, refillPerSecond: 2 },
  describe: { capacity: 100, refillPerSecond: 20 },
  terminate: { capacity: 1000, refillPerSecond: 20 },
  mutate: { capacity: 200, refillPerSecond: 10 },
};

/**
 * One process's own buckets, each the account's whole bucket: right for one worker alone (tests, a
 * single-worker shard). A worker of a shard uses ShardEc2Limits, which holds only its share.
 */
export function defaultEc2RateLimits(clock?: Clock): Ec2RateLimits & Record<keyof Ec2RateLimits, TokenBucket> {
  const bucket = (limit: BucketLimit) => new TokenBucket({ ...limit, clock });
  return {
    runInstances: bucket(EC2_ACCOUNT_LIMITS.runInstances),
    describe: bucket(EC2_ACCOUNT_LIMITS.describe),
    terminate: bucket(EC2_ACCOUNT_LIMITS.terminate),
    mutate: bucket(EC2_ACCOUNT_LIMITS.mutate),
  };
}
