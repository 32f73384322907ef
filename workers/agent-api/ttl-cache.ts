/**
 * A small keyed cache with a TTL and single-flight loads: however many requests ask for
 * a key at once, one load runs and they all get its result. A failed load is remembered
 * briefly too (errorTtlMs), so an outage of what it reads costs one call per key per
 * errorTtlMs rather than one per request.
 */

interface Entry<V> {
  expiresAt: number;
  outcome: { value: V } | { error: unknown };
}

export interface TtlCacheOptions {
  ttlMs: number;
  /** How long a failure is answered from memory (default: a tenth of the TTL, at least 100 ms). */
  errorTtlMs?: number;
  /** Bound on keys held; the expired, then the oldest, go first. */
  maxEntries?: number;
  now?: () => number;
}

export class TtlCache<K, V> {
  private readonly entries = new Map<K, Entry<V>>();
  private readonly inflight = new Map<K, Promise<V>>();
  private readonly now: () => number;

  constructor(private readonly options: TtlCacheOptions) {
    this.now = options.now ?? Date.now;
  }

  get(key: K, load: () => Promise<V>): Promise<V> {
    const entry = this.entries.get(key);
    if (entry && entry.expiresAt > this.now()) return 'value' in entry.outcome ? Promise.resolve(entry.outcome.value) : Promise.reject(entry.outcome.error);
    const running = this.inflight.get(key);
    if (running) return running;
    const promise = load().then(
      (value) => {
        this.store(key, { value }, this.options.ttlMs);
        return value;
      },
      (error: unknown) => {
        this.store(key, { error }, this.options.errorTtlMs ?? Math.max(100, this.options.ttlMs / 10));
        throw error;
      },
    );
    this.inflight.set(key, promise);
    const clear = () => this.inflight.delete(key);
    promise.then(clear, clear);
    return promise;
  }

  get size(): number {
    return this.entries.size;
  }

  private store(key: K, outcome: Entry<V>['outcome'], ttlMs: number): void {
    const now = this.now();
    this.entries.delete(key);
    this.entries.set(key, { outcome, expiresAt: now + ttlMs });
    const max = this.options.maxEntries ?? 10_000;
    if (this.entries.size <= max) return;
    for (const [k, e] of this.entries) if (e.expiresAt <= now) this.entries.delete(k);
    // Maps iterate in insertion order, and a store re-inserts: the first keys are the oldest.
    for (const k of this.entries.keys()) {
      if (this.entries.size <= max) break;
      this.entries.delete(k);
    }
  }
}
