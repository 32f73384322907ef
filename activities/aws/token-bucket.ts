/**
 * Client-side token bucket mirroring EC2's own request buckets, so a large
 * scale-up waits here instead of tripping RequestLimitExceeded.
 */
export interface TokenBucketOptions {
  capacity: number;
  refillPerSecond: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly options: TokenBucketOptions) {
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.tokens = options.capacity;
    this.last = this.now();
  }

  /** Waits until `count` tokens are available, then takes them. Callers are served in order. */
  take(count = 1): Promise<void> {
    if (count > this.options.capacity) throw new Error(`cannot take ${count} tokens from a bucket of ${this.options.capacity}`);
    const turn = this.queue.then(() => this.takeNow(count));
    this.queue = turn.catch(() => undefined);
    return turn;
  }

  private async takeNow(count: number): Promise<void> {
    for (;;) {
      this.refill();
      if (this.tokens >= count) {
        this.tokens -= count;
        return;
      }
      const missing = count - this.tokens;
      await this.sleep(Math.ceil((missing / this.options.refillPerSecond) * 1000));
    }
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.options.capacity, this.tokens + ((t - this.last) / 1000) * this.options.refillPerSecond);
    this.last = t;
  }
}

/** EC2's documented default buckets (per account and region). */
export interface Ec2RateLimits {
  runInstances: TokenBucket;
  describe: TokenBucket;
  terminate: TokenBucket;
  mutate: TokenBucket;
}

export function defaultEc2RateLimits(): Ec2RateLimits {
  return {
    runInstances: new TokenBucket({ capacity: 1000, refillPerSecond: 2 }),
    describe: new TokenBucket({ capacity: 100, refillPerSecond: 20 }),
    terminate: new TokenBucket({ capacity: 1000, refillPerSecond: 20 }),
    mutate: new TokenBucket({ capacity: 200, refillPerSecond: 10 }),
  };
}
