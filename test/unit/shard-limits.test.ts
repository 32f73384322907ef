/**
 * EC2's token buckets are the account's: however many workers a shard runs, what they spend together
 * must fit in one bucket. Simulated on a fake clock: greedy workers joining and leaving, every take
 * recorded, then replayed against the account's bucket (EC2's side), which must never be overdrawn.
 */
import { followShardWorkers, ShardEc2Limits, shardWorkersView, UNKNOWN_SHARD_VIEW, type ShardWorkersView } from '../../adapters/aws/shard-limits';
import { defaultEc2RateLimits, EC2_ACCOUNT_LIMITS, TokenBucket, type BucketLimit, type Ec2RateLimits, type RateLimiter } from '../../adapters/aws/token-bucket';
import { FakeClock, settle } from '../support/fake-clock';

interface Take {
  at: number;
  count: number;
}

/** The most the account's bucket (full at t=0) was overdrawn by these takes, replayed in time order. */
function overdraft(takes: Take[], limit: BucketLimit): number {
  let tokens = limit.capacity;
  let last = 0;
  let worst = 0;
  for (const take of [...takes].sort((a, b) => a.at - b.at)) {
    tokens = Math.min(limit.capacity, tokens + ((take.at - last) / 1000) * limit.refillPerSecond);
    last = take.at;
    tokens -= take.count;
    worst = Math.min(worst, tokens);
  }
  return -worst;
}

/** A worker that spends every token it gets from `bucket`, `count` at a time, until stopped. */
function greedy(clock: FakeClock, bucket: RateLimiter, count: number, takes: Take[]): { stop: () => void } {
  const stop = new AbortController();
  void (async () => {
    while (!stop.signal.aborted) {
      await bucket.take(count, stop.signal);
      takes.push({ at: clock.now(), count });
    }
  })().catch(() => undefined);
  return { stop: () => stop.abort() };
}

const REFRESH_MS = 15_000;
const SPENT: Array<{ bucket: keyof Ec2RateLimits; count: number }> = [
  { bucket: 'describe', count: 1 },
  { bucket: 'runInstances', count: 5 },
];

/**
 * A starts alone at 0; B joins at 7 s, C at 30 s; B leaves at 60 s; run until 120 s. Each worker counts
 * the shard (the live set) every 15 s, at its own phase, as the worker does with DescribeTaskQueue.
 */
async function simulate(make: (clock: FakeClock) => { limits: Ec2RateLimits; follow?: (count: () => Promise<ShardWorkersView>) => { stop(): void } }) {
  const clock = new FakeClock();
  const live = new Set<string>();
  const takes = new Map<keyof Ec2RateLimits, Take[]>(SPENT.map((s) => [s.bucket, []]));
  const running = new Map<string, Array<{ stop(): void }>>();
  const start = async (name: string) => {
    live.add(name);
    const worker = make(clock);
    const follower = worker.follow?.(async () => ({ others: [...live].filter((n) => n !== name).length, predecessor: false }));
    await settle();
    running.set(name, [...SPENT.map((s) => greedy(clock, worker.limits[s.bucket], s.count, takes.get(s.bucket) ?? [])), ...(follower ? [follower] : [])]);
  };
  const leave = (name: string) => {
    live.delete(name);
    for (const r of running.get(name) ?? []) r.stop();
  };
  await start('A');
  await clock.advance(7_000);
  await start('B');
  await clock.advance(23_000);
  await start('C');
  await clock.advance(30_000);
  leave('B');
  await clock.advance(60_000);
  for (const name of [...live]) leave(name);
  await settle();
  return { takes, endMs: 120_000 };
}

const shardWorker = (clock: FakeClock) => {
  const limits = new ShardEc2Limits({ joinGraceMs: REFRESH_MS + 2_000, clock });
  return { limits, follow: (count: () => Promise<ShardWorkersView>) => followShardWorkers(limits, { count, intervalMs: REFRESH_MS, clock }) };
};

describe('EC2 limits held for the shard as a whole', () => {
  test('workers joining and leaving never spend more together than the account bucket allows, and still use most of it', async () => {
    const { takes, endMs } = await simulate(shardWorker);
    for (const { bucket } of SPENT) {
      const limit = EC2_ACCOUNT_LIMITS[bucket];
      const spent = takes.get(bucket) ?? [];
      expect(overdraft(spent, limit)).toBeLessThanOrEqual(1e-6);
      // Not starved: the account allowed capacity + refill x time; the shares spend most of it.
      const allowed = limit.capacity + (endMs / 1000) * limit.refillPerSecond;
      const total = spent.reduce((n, t) => n + t.count, 0);
      expect(total / allowed).toBeGreaterThan(0.7);
    }
  });

  test('the check can fail: workers with whole buckets of their own overdraw the account', async () => {
    const { takes } = await simulate((clock) => ({ limits: defaultEc2RateLimits(clock) }));
    expect(overdraft(takes.get('describe') ?? [], EC2_ACCOUNT_LIMITS.describe)).toBeGreaterThan(50);
  });

  test('the check can fail: a joiner that spends before its peers have counted it overdraws the account', async () => {
    const { takes } = await simulate((clock) => {
      const limits = new ShardEc2Limits({ joinGraceMs: 0, clock });
      return { limits, follow: (count) => followShardWorkers(limits, { count, intervalMs: REFRESH_MS, clock }) };
    });
    expect(overdraft(takes.get('describe') ?? [], EC2_ACCOUNT_LIMITS.describe)).toBeGreaterThan(10);
  });

  test('a worker alone starts with the whole bucket; one that joins others, or follows a predecessor of its own identity, starts empty', async () => {
    const clock = new FakeClock();
    const alone = new ShardEc2Limits({ joinGraceMs: 17_000, clock });
    alone.update({ others: 0, predecessor: false });
    expect(alone.runInstances.available()).toBe(1000);
    expect(alone.workers).toBe(1);

    const joiner = new ShardEc2Limits({ joinGraceMs: 17_000, clock });
    joiner.update({ others: 1, predecessor: false });
    expect(joiner.runInstances.capacity).toBe(500);
    expect(joiner.describe.refillPerSecond).toBe(10);
    await clock.advance(16_000);
    expect(joiner.describe.available()).toBe(0);
    await clock.advance(2_000);
    expect(joiner.describe.available()).toBeCloseTo(10);

    const successor = new ShardEc2Limits({ joinGraceMs: 17_000, clock });
    successor.update({ others: 0, predecessor: true });
    expect(successor.describe.available()).toBe(0);
    await clock.advance(1_000);
    expect(successor.describe.available()).toBeCloseTo(20);
  });

  test('a worker that sees the shard grow gives up its extra tokens at once; one that sees it shrink grows by refilling', async () => {
    const clock = new FakeClock();
    const limits = new ShardEc2Limits({ joinGraceMs: 17_000, clock });
    limits.update({ others: 0, predecessor: false });
    limits.update({ others: 3, predecessor: false });
    expect(limits.terminate.available()).toBe(250);
    limits.update({ others: 0, predecessor: false });
    expect(limits.terminate.available()).toBe(250);
    await clock.advance(1_000);
    expect(limits.terminate.available()).toBeCloseTo(270);
  });

  test('nothing is spent before the first count; a count that fails is taken as company', async () => {
    const clock = new FakeClock();
    const limits = new ShardEc2Limits({ joinGraceMs: 17_000, clock });
    let served = false;
    void limits.describe.take().then(() => (served = true));
    await clock.advance(60_000);
    expect(served).toBe(false);
    const follower = followShardWorkers(limits, { count: () => Promise.reject(new Error('Temporal unavailable')), intervalMs: REFRESH_MS, clock });
    await follower.ready;
    expect(limits.workers).toBe(UNKNOWN_SHARD_VIEW.others + 1);
    await clock.advance(18_000);
    expect(served).toBe(true);
    follower.stop();
  });
});

describe("the shard's workers, from its task queue's pollers", () => {
  const self = { identity: 'nstance-worker/w1', startedAtMs: 100_000 };
  test('counts other live identities once; stale pollers are not counted', () => {
    const view = shardWorkersView(
      [
        { identity: 'nstance-worker/w2', lastAccessMs: 199_000 },
        { identity: 'nstance-worker/w2', lastAccessMs: 198_000 },
        { identity: 'nstance-worker/w3', lastAccessMs: 10_000 },
        { identity: 'nstance-worker/w1', lastAccessMs: 199_500 },
      ],
      self,
      200_000,
    );
    expect(view).toEqual({ others: 1, predecessor: false });
  });

  test('its own identity, seen polling before it started, is a predecessor', () => {
    expect(shardWorkersView([{ identity: 'nstance-worker/w1', lastAccessMs: 90_000 }], self, 100_500)).toEqual({ others: 0, predecessor: true });
  });
});

describe('token bucket', () => {
  test('serves in order, refills at its rate, and pays a count above its capacity in full buckets', async () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket({ capacity: 10, refillPerSecond: 5, clock });
    const served: string[] = [];
    const take = (name: string, n: number) => void bucket.take(n).then(() => served.push(`${name}@${clock.now()}`));
    take('a', 10);
    take('b', 25);
    take('c', 1);
    await clock.advance(10_000);
    // b needs 25 from a bucket of 10: 2.5 buckets' worth of refill (5 s); c waits its turn behind b.
    expect(served).toEqual(['a@0', 'b@5000', 'c@5200']);
  });

  test('an aborted take leaves the queue at once and the next caller is served', async () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket({ capacity: 1, refillPerSecond: 1, initialTokens: 0, clock });
    const stop = new AbortController();
    const first = bucket.take(1, stop.signal);
    const second = bucket.take(1);
    stop.abort(new Error('activity cancelled'));
    await expect(first).rejects.toThrow('activity cancelled');
    await clock.advance(1_000);
    await expect(second).resolves.toBeUndefined();
    expect(bucket.waiting).toBe(0);
  });
});
