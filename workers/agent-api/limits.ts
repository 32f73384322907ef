/**
 * What keeps the agent API up under load and abuse:
 * - RejectionLimiter: a token bucket per remote address that only rejected requests
 *   spend. A peer past it gets 429 at once, before anything is read, verified or
 *   written. Accepted requests cost nothing, so a fleet behind one address is not
 *   throttled for being large, only for being refused.
 * - ConcurrencyLimit: at most N requests in flight, a bounded queue behind them, and
 *   503 (with Retry-After) past it, so a burst queues briefly instead of piling up
 *   AWS and Temporal calls until every one of them times out.
 */

export interface RejectionLimits {
  /** Rejections a remote may have in a row before it is refused outright. */
  burst?: number;
  /** Rejections per second it earns back. */
  refillPerSecond?: number;
  /** Remotes tracked at most; past it, new ones share one bucket (memory stays bounded under a spread attack). */
  maxTracked?: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

const SHARED = '*';

export class RejectionLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly burst: number;
  private readonly refillPerMs: number;
  private readonly maxTracked: number;
  private sweptAt = -Infinity;

  constructor(
    limits: RejectionLimits = {},
    private readonly now: () => number = Date.now,
  ) {
    this.burst = limits.burst ?? 20;
    this.refillPerMs = (limits.refillPerSecond ?? 0.2) / 1000;
    this.maxTracked = limits.maxTracked ?? 10_000;
  }

  /** Undefined when `remote` may be served; otherwise how long until it may try again (ms). */
  blockedFor(remote: string): number | undefined {
    const bucket = this.refilled(this.keyOf(remote));
    if (!bucket || bucket.tokens >= 1) return undefined;
    return Math.ceil((1 - bucket.tokens) / this.refillPerMs);
  }

  /** A request from `remote` was refused: it spends a token. */
  rejected(remote: string): void {
    const key = this.keyOf(remote);
    const bucket = this.refilled(key) ?? { tokens: this.burst, at: this.now() };
    bucket.tokens = Math.max(0, bucket.tokens - 1);
    this.buckets.set(key, bucket);
  }

  get tracked(): number {
    return this.buckets.size;
  }

  private refilled(key: string): Bucket | undefined {
    const bucket = this.buckets.get(key);
    if (!bucket) return undefined;
    const now = this.now();
    bucket.tokens = Math.min(this.burst, bucket.tokens + (now - bucket.at) * this.refillPerMs);
    bucket.at = now;
    // A full bucket is the same as none: forget it.
    if (bucket.tokens >= this.burst) {
      this.buckets.delete(key);
      return undefined;
    }
    return bucket;
  }

  private keyOf(remote: string): string {
    if (this.buckets.has(remote) || this.buckets.size < this.maxTracked) return remote;
    // Full: drop the buckets that have refilled, at most once a second (a sweep walks them all).
    if (this.now() - this.sweptAt >= 1000) {
      this.sweptAt = this.now();
      for (const key of [...this.buckets.keys()]) this.refilled(key);
    }
    return this.buckets.size < this.maxTracked ? remote : SHARED;
  }
}

/** Raised when the API is at its concurrency bound: answer 503 with Retry-After. */
export class OverloadedError extends Error {
  constructor(
    readonly retryAfterMs: number,
    message: string,
  ) {
    super(message);
    this.name = 'OverloadedError';
  }
}

export interface ConcurrencyLimits {
  maxInFlight?: number;
  maxQueued?: number;
  /** A request waiting longer than this in the queue is answered 503 (the agent retries later). */
  maxQueueWaitMs?: number;
}

interface Waiter {
  resolve: (release: () => void) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export class ConcurrencyLimit {
  private running = 0;
  private readonly waiting: Waiter[] = [];
  readonly maxInFlight: number;
  readonly maxQueued: number;
  private readonly maxQueueWaitMs: number;
  /** Requests turned away since start (queue full or waited too long). */
  shed = 0;

  constructor(limits: ConcurrencyLimits = {}) {
    this.maxInFlight = limits.maxInFlight ?? 128;
    this.maxQueued = limits.maxQueued ?? 2048;
    this.maxQueueWaitMs = limits.maxQueueWaitMs ?? 10_000;
  }

  get inFlight(): number {
    return this.running;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** Resolves with a release function once the request may run; rejects with OverloadedError. */
  acquire(): Promise<() => void> {
    if (this.running < this.maxInFlight) {
      this.running++;
      return Promise.resolve(this.releaser());
    }
    if (this.waiting.length >= this.maxQueued) {
      this.shed++;
      return Promise.reject(new OverloadedError(this.retryAfterMs(), `agent API busy: ${this.running} requests in flight and ${this.waiting.length} queued`));
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          const at = this.waiting.indexOf(waiter);
          if (at >= 0) this.waiting.splice(at, 1);
          this.shed++;
          reject(new OverloadedError(this.retryAfterMs(), `agent API busy: queued for ${this.maxQueueWaitMs} ms without a turn`));
        }, this.maxQueueWaitMs),
      };
      waiter.timer.unref();
      this.waiting.push(waiter);
    });
  }

  /** A rough time for the queue to drain, so retries do not all land on the next second. */
  private retryAfterMs(): number {
    return Math.min(30_000, 1000 * Math.max(1, Math.ceil(this.waiting.length / this.maxInFlight)));
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (!next) {
        this.running--;
        return;
      }
      // The slot passes straight to the next waiter.
      clearTimeout(next.timer);
      next.resolve(this.releaser());
    };
  }
}
