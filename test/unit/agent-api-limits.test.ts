/**
 * The agent API's limits with fake clocks: the per-remote budget of rejections, the
 * bounded concurrency, and the aggregation of rejections into a bounded number of
 * audit summaries per window.
 */
import type { AuditEntry } from '../../common/types';
import { ConcurrencyLimit, OverloadedError, RejectionLimiter } from '../../workers/agent-api/limits';
import { OVERFLOW_ACTION, RejectionAggregator, type Rejection } from '../../workers/agent-api/rejections';

describe('RejectionLimiter', () => {
  let clock: number;
  beforeEach(() => (clock = 1_000_000));

  test('a remote may be refused `burst` times; then it is blocked until it earns a token back', () => {
    const limiter = new RejectionLimiter({ burst: 3, refillPerSecond: 1 }, () => clock);
    for (let i = 0; i < 3; i++) {
      expect(limiter.blockedFor('10.0.0.1')).toBeUndefined();
      limiter.rejected('10.0.0.1');
    }
    expect(limiter.blockedFor('10.0.0.1')).toBe(1000);
    // Others are not affected.
    expect(limiter.blockedFor('10.0.0.2')).toBeUndefined();
    clock += 400;
    expect(limiter.blockedFor('10.0.0.1')).toBe(600);
    clock += 600;
    expect(limiter.blockedFor('10.0.0.1')).toBeUndefined();
    limiter.rejected('10.0.0.1');
    expect(limiter.blockedFor('10.0.0.1')).toBe(1000);
  });

  test('a remote that stops being refused is forgotten once its bucket is full again', () => {
    const limiter = new RejectionLimiter({ burst: 2, refillPerSecond: 1 }, () => clock);
    limiter.rejected('a');
    expect(limiter.tracked).toBe(1);
    clock += 1000;
    limiter.blockedFor('a');
    expect(limiter.tracked).toBe(0);
  });

  test('memory stays bounded under a spread attack: past maxTracked, new remotes share one bucket', () => {
    const limiter = new RejectionLimiter({ burst: 2, refillPerSecond: 0.001, maxTracked: 100 }, () => clock);
    for (let i = 0; i < 1000; i++) limiter.rejected(`10.0.${Math.floor(i / 250)}.${i % 250}`);
    expect(limiter.tracked).toBeLessThanOrEqual(101);
    // The shared bucket is spent: an unseen remote is blocked too (the price of the bound).
    expect(limiter.blockedFor('192.0.2.1')).toBeGreaterThan(0);
  });
});

describe('ConcurrencyLimit', () => {
  test('at most maxInFlight run, maxQueued wait, the rest are refused with a Retry-After; slots pass to the queue in order', async () => {
    const limit = new ConcurrencyLimit({ maxInFlight: 2, maxQueued: 2, maxQueueWaitMs: 60_000 });
    const a = await limit.acquire();
    const b = await limit.acquire();
    const order: string[] = [];
    const c = limit.acquire().then((release) => (order.push('c'), release));
    const d = limit.acquire().then((release) => (order.push('d'), release));
    await expect(limit.acquire()).rejects.toBeInstanceOf(OverloadedError);
    expect([limit.inFlight, limit.queued, limit.shed]).toEqual([2, 2, 1]);
    a();
    a(); // a second release of the same slot changes nothing
    const releaseC = await c;
    expect([limit.inFlight, limit.queued]).toEqual([2, 1]);
    b();
    releaseC();
    (await d)();
    expect(order).toEqual(['c', 'd']);
    expect([limit.inFlight, limit.queued]).toEqual([0, 0]);
  });

  test('a request that waits longer than maxQueueWaitMs is refused and leaves the queue', async () => {
    jest.useFakeTimers();
    try {
      const limit = new ConcurrencyLimit({ maxInFlight: 1, maxQueued: 5, maxQueueWaitMs: 1000 });
      const held = await limit.acquire();
      const waiting = limit.acquire();
      const outcome = waiting.then(() => 'served', (err: unknown) => (err instanceof OverloadedError ? `refused after ${err.retryAfterMs}` : 'other'));
      jest.advanceTimersByTime(1000);
      expect(await outcome).toMatch(/^refused after \d+/);
      expect(limit.queued).toBe(0);
      held();
      expect(limit.inFlight).toBe(0);
    } finally {
      jest.useRealTimers();
    }
  });
});

describe('RejectionAggregator', () => {
  let clock: number;
  let written: { entry: AuditEntry; dedupeKey: string }[];
  let failWrites: number;
  let attempted: string[];

  beforeEach(() => {
    clock = Date.parse('2025-01-01T00:00:00Z');
    written = [];
    failWrites = 0;
    attempted = [];
  });

  function aggregator(extra: Partial<ConstructorParameters<typeof RejectionAggregator>[0]> = {}): RejectionAggregator {
    return new RejectionAggregator({
      shard: 's1',
      actor: 'agent-api:w1',
      now: () => clock,
      write: async (entry, dedupeKey) => {
        attempted.push(dedupeKey);
        if (failWrites > 0) {
          failWrites--;
          throw new Error('S3 unavailable');
        }
        written.push({ entry, dedupeKey });
      },
      ...extra,
    });
  }

  const bad = (i: number, reason = 'nonce-bad-signature'): Rejection => ({
    action: 'agent.register.rejected',
    reason,
    remote: `10.0.0.${i % 50}:${40000 + i}`,
    instanceIds: [`web-${i % 30}`],
    details: { nonceId: `n-${i}` },
  });

  test('thousands of rejections of one kind in a window become one summary: count, first and last time, bounded samples', async () => {
    const agg = aggregator({ maxDistinct: 10, maxSamples: 3 });
    for (let i = 0; i < 5000; i++) {
      agg.record(bad(i));
      clock += 1;
    }
    expect(written).toEqual([]);
    expect(await agg.flush()).toBe(1);
    const [{ entry }] = written;
    expect(entry).toMatchObject({ shard: 's1', action: 'agent.register.rejected', actor: 'agent-api:w1', at: '2025-01-01T00:00:00.000Z' });
    expect(entry.details).toMatchObject({ summary: true, reason: 'nonce-bad-signature', count: 5000, firstAt: '2025-01-01T00:00:00.000Z', lastAt: '2025-01-01T00:00:04.999Z' });
    expect(entry.details?.remotes).toHaveLength(10);
    expect(entry.details?.eventsFromUnlistedRemotes).toBe(4990);
    expect(entry.instanceIds).toHaveLength(10);
    expect(entry.details?.samples).toEqual([
      expect.objectContaining({ nonceId: 'n-0', remote: '10.0.0.0:40000' }),
      expect.objectContaining({ nonceId: 'n-1' }),
      expect.objectContaining({ nonceId: 'n-2' }),
    ]);
    // The next window starts empty.
    expect(await agg.flush()).toBe(0);
  });

  test('one summary per (action, reason) per window, and never more than the cap: extra kinds fold into one overflow summary', async () => {
    const agg = aggregator({ maxObjectsPerWindow: 4 });
    for (let i = 0; i < 100; i++) agg.record(bad(i, `reason-${i % 10}`));
    agg.record({ action: 'agent.auth.rejected', reason: 'client-certificate-untrusted', remote: '10.1.1.1:1' });
    await agg.flush();
    expect(written).toHaveLength(4);
    const overflow = written.find((w) => w.entry.action === OVERFLOW_ACTION)?.entry;
    expect(overflow?.details?.count).toBe(100 + 1 - 30);
    expect(overflow?.details?.samples).toContainEqual(expect.objectContaining({ action: 'agent.register.rejected', reason: 'reason-3' }));
    const counted = written.reduce((n, w) => n + Number(w.entry.details?.count), 0);
    expect(counted).toBe(101);
  });

  test('a summary that cannot be written is retried at the next flush under the same key; a long outage keeps at most one window of them', async () => {
    const agg = aggregator({ maxObjectsPerWindow: 3 });
    agg.record(bad(1, 'a'));
    agg.record(bad(2, 'b'));
    failWrites = 1;
    expect(await agg.flush()).toBe(1);
    const failedKey = attempted[0];
    agg.record(bad(3, 'c'));
    expect(await agg.flush()).toBe(2);
    expect(written.map((w) => w.entry.details?.reason).sort()).toEqual(['a', 'b', 'c']);
    // The retry lands on the key the failed attempt used: create-only, so it can never be written twice.
    expect(written.find((w) => w.entry.details?.reason === 'a')?.dedupeKey).toBe(failedKey);
    expect(new Set(written.map((w) => w.dedupeKey)).size).toBe(3);

    failWrites = 1000;
    for (let w = 0; w < 10; w++) {
      for (const r of ['x', 'y', 'z']) agg.record(bad(w, r));
      await agg.flush();
    }
    failWrites = 0;
    expect(await agg.flush()).toBe(3);
  });

  test('the timer flushes once per window, and close() writes what is left', async () => {
    jest.useFakeTimers();
    try {
      const agg = aggregator({ windowMs: 1000 });
      agg.start();
      agg.record(bad(1));
      await jest.advanceTimersByTimeAsync(1000);
      expect(written).toHaveLength(1);
      agg.record(bad(2));
      await agg.close();
      expect(written).toHaveLength(2);
      await jest.advanceTimersByTimeAsync(5000);
      expect(written).toHaveLength(2);
    } finally {
      jest.useRealTimers();
    }
  });
});
