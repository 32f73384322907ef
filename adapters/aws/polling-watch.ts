import { ApplicationFailure } from '@temporalio/common';
import { systemClock, type Clock, type ClockTimer } from './clock';

/**
 * Many activities waiting on one thing each (an instance's state, a target's drain), served by one
 * polling loop: every poll interval, ONE look covers every key being waited on, and each waiter
 * decides from its own answer. A process's waiters thus cost one look per interval, however many.
 */
export interface PollingWatchOptions<K extends string, V> {
  /** One look at these keys; a key missing from the answer is one the source did not show this time. */
  look: (keys: K[]) => Promise<ReadonlyMap<K, V>>;
  pollMs: number;
  /**
   * Consecutive failed looks a waiter sits through (throttling, a 5xx) before it fails with the last
   * error, so one bad answer does not fail every waiter of the process at once. A non-retryable error
   * fails the waiters at once.
   */
  maxFailedLooks?: number;
  clock?: Clock;
}

export interface WaitOptions<V> {
  /** The waiting activity's cancellation: the waiter leaves and the wait rejects with its reason. */
  signal?: AbortSignal;
  /** After every look this waiter was part of: what it showed (undefined: not shown), or the look's error. */
  onLook?: (seen: V | undefined, error?: Error) => void;
}

interface Waiter<K, V> {
  key: K;
  decide: (seen: V | undefined) => unknown;
  onLook?: (seen: V | undefined, error?: Error) => void;
  resolve: (value: unknown) => void;
  reject: (reason: unknown) => void;
  failedLooks: number;
  signal?: AbortSignal;
  onAbort?: () => void;
}

export class PollingWatch<K extends string, V> {
  private readonly waiters = new Set<Waiter<K, V>>();
  private readonly clock: Clock;
  private readonly maxFailedLooks: number;
  private timer: ClockTimer | undefined;
  private looking = false;
  private lastLookAt = -Infinity;
  /** Looks made so far (for tests and benchmarks). */
  looks = 0;

  constructor(private readonly options: PollingWatchOptions<K, V>) {
    this.clock = options.clock ?? systemClock;
    this.maxFailedLooks = options.maxFailedLooks ?? 3;
  }

  get waiting(): number {
    return this.waiters.size;
  }

  /**
   * Waits until `decide` returns something other than undefined for what a look shows of `key`
   * (undefined when the look did not show it), and resolves with that; `decide` throwing fails the wait.
   */
  wait<T>(key: K, decide: (seen: V | undefined) => T | undefined, options: WaitOptions<V> = {}): Promise<T> {
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter<K, V> = { key, decide, onLook: options.onLook, resolve: resolve as (value: unknown) => void, reject, failedLooks: 0, signal };
      if (signal) {
        waiter.onAbort = () => this.finish(waiter, () => reject(signal.reason));
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.waiters.add(waiter);
      this.schedule();
    });
  }

  private finish(waiter: Waiter<K, V>, settle: () => void): void {
    if (!this.waiters.delete(waiter)) return;
    if (waiter.onAbort) waiter.signal?.removeEventListener('abort', waiter.onAbort);
    settle();
    if (this.waiters.size === 0 && this.timer !== undefined) {
      this.clock.clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  /** The next look, one interval after the previous one started (at once when the loop was idle). */
  private schedule(): void {
    if (this.looking || this.timer !== undefined || this.waiters.size === 0) return;
    const dueIn = Math.max(0, this.lastLookAt + this.options.pollMs - this.clock.now());
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      void this.lookOnce();
    }, dueIn);
  }

  private async lookOnce(): Promise<void> {
    this.looking = true;
    this.lastLookAt = this.clock.now();
    const batch = [...this.waiters];
    try {
      let seen: ReadonlyMap<K, V> | undefined;
      let failure: Error | undefined;
      try {
        this.looks++;
        seen = await this.options.look([...new Set(batch.map((w) => w.key))]);
      } catch (err) {
        failure = err instanceof Error ? err : new Error(String(err));
      }
      for (const waiter of batch) {
        if (!this.waiters.has(waiter)) continue;
        if (failure) this.failed(waiter, failure);
        else this.answer(waiter, seen?.get(waiter.key));
      }
    } finally {
      this.looking = false;
      this.schedule();
    }
  }

  private answer(waiter: Waiter<K, V>, seen: V | undefined): void {
    waiter.failedLooks = 0;
    try {
      waiter.onLook?.(seen);
      const result = waiter.decide(seen);
      if (result !== undefined) this.finish(waiter, () => waiter.resolve(result));
    } catch (err) {
      this.finish(waiter, () => waiter.reject(err));
    }
  }

  private failed(waiter: Waiter<K, V>, failure: Error): void {
    waiter.failedLooks++;
    waiter.onLook?.(undefined, failure);
    const final = failure instanceof ApplicationFailure && failure.nonRetryable;
    if (final || waiter.failedLooks >= this.maxFailedLooks) this.finish(waiter, () => waiter.reject(failure));
  }
}
