/**
 * The shard config cache against an in-memory S3 that answers conditional GETs as S3 does
 * (304 for a matching If-None-Match), with a fake clock: one load for many callers, no
 * request before the TTL, one conditional request after it (no download unless changed),
 * a guaranteed-fresh read, and failures that never replace what is cached.
 */
import { GetObjectCommand } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { CachedObject, FRESH, ShardConfigCache } from '../../adapters/s3/config-cache';
import { ObjectStore } from '../../adapters/s3/objects';

interface Get {
  key: string;
  ifNoneMatch?: string;
  outcome: 'body' | '304' | 'missing' | 'error';
}

class ConditionalS3 {
  readonly objects = new Map<string, { text: string; etag: string }>();
  readonly gets: Get[] = [];
  failNext = 0;
  /** Resolves a GET only when the test says so. */
  hold: Promise<void> | undefined;
  private version = 0;

  put(key: string, text: string): void {
    this.objects.set(key, { text, etag: `"v${++this.version}"` });
  }

  async send(command: unknown): Promise<unknown> {
    if (!(command instanceof GetObjectCommand)) throw new Error('unexpected command');
    const { Key, IfNoneMatch } = command.input;
    const get: Get = { key: Key as string, ifNoneMatch: IfNoneMatch, outcome: 'body' };
    this.gets.push(get);
    if (this.hold) await this.hold;
    if (this.failNext > 0) {
      this.failNext--;
      get.outcome = 'error';
      throw Object.assign(new Error('service unavailable'), { name: 'ServiceUnavailable', $metadata: { httpStatusCode: 503 } });
    }
    const found = this.objects.get(Key as string);
    if (!found) {
      get.outcome = 'missing';
      throw Object.assign(new Error('missing'), { name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } });
    }
    if (IfNoneMatch === found.etag) {
      get.outcome = '304';
      throw Object.assign(new Error('UnknownError'), { name: 'Unknown', $metadata: { httpStatusCode: 304 } });
    }
    return { Body: { transformToString: async () => found.text }, ETag: found.etag };
  }
}

let s3: ConditionalS3;
let clock: number;
let parses: number;
const KEY = 'shard/s1/thing.json';

function cache(ttlMs = 5_000, onError?: (err: unknown) => void): CachedObject<{ n: number }> {
  const objects = new ObjectStore({ s3: s3 as unknown as S3Client, bucket: 'bucket-b' });
  return new CachedObject(objects, KEY, (text) => {
    parses++;
    return JSON.parse(text) as { n: number };
  }, { ttlMs, now: () => clock, onError });
}

const settle = () => new Promise((r) => setImmediate(r));

beforeEach(() => {
  s3 = new ConditionalS3();
  clock = 1_000_000;
  parses = 0;
  s3.put(KEY, '{"n":1}');
});

test('a hundred concurrent first reads make one GET and parse once', async () => {
  const c = cache();
  const values = await Promise.all(Array.from({ length: 100 }, () => c.get()));
  expect(new Set(values.map((v) => v?.value.n))).toEqual(new Set([1]));
  expect(s3.gets).toHaveLength(1);
  expect(parses).toBe(1);
});

test('within the TTL nothing is asked; after it, readers get the cached value at once and one conditional GET revalidates it (304: no download)', async () => {
  const c = cache(5_000);
  await c.get();
  clock += 4_999;
  for (let i = 0; i < 50; i++) await c.get();
  expect(s3.gets).toHaveLength(1);
  clock += 1;
  const during = await Promise.all(Array.from({ length: 50 }, () => c.get()));
  expect(during.every((v) => v?.value.n === 1)).toBe(true);
  await settle();
  expect(s3.gets.slice(1)).toEqual([{ key: KEY, ifNoneMatch: '"v1"', outcome: '304' }]);
  expect(parses).toBe(1);
  // Revalidated: another TTL of silence.
  clock += 4_999;
  await c.get();
  await settle();
  expect(s3.gets).toHaveLength(2);
});

test('a changed object is downloaded by the revalidation and served from then on', async () => {
  const c = cache(5_000);
  await c.get();
  s3.put(KEY, '{"n":2}');
  clock += 5_000;
  expect((await c.get())?.value.n).toBe(1);
  await settle();
  expect((await c.get())).toEqual({ value: { n: 2 }, etag: '"v2"' });
  expect(s3.gets.map((g) => g.outcome)).toEqual(['body', 'body']);
});

test('FRESH waits for a GET sent after the call, even within the TTL; a burst of FRESH callers costs two GETs (the one in flight and one queued behind it)', async () => {
  const c = cache(60_000);
  await c.get();
  s3.put(KEY, '{"n":2}');
  const fresh = await Promise.all(Array.from({ length: 20 }, () => c.get(FRESH)));
  expect(fresh.map((v) => v?.value.n)).toEqual(Array(20).fill(2));
  expect(s3.gets).toHaveLength(3);
  // Unchanged: a fresh read costs a 304, not a download.
  expect((await c.get(FRESH))?.value.n).toBe(2);
  expect(s3.gets[3]).toMatchObject({ ifNoneMatch: '"v2"', outcome: '304' });
});

test('a FRESH read never joins a load that was already in flight when it was asked for', async () => {
  const c = cache(60_000);
  await c.get();
  let release: () => void = () => undefined;
  s3.hold = new Promise((r) => (release = r));
  clock += 60_000;
  void c.get(); // starts a background revalidation, now held
  await settle();
  expect(s3.gets).toHaveLength(2);
  s3.put(KEY, '{"n":3}');
  const fresh = c.get(FRESH);
  await settle();
  // Queued behind the held one, not answered by it.
  expect(s3.gets).toHaveLength(2);
  s3.hold = undefined;
  release();
  expect((await fresh)?.value.n).toBe(3);
  expect(s3.gets).toHaveLength(3);
});

test('maxAgeMs accepts a value validated recently enough, else loads', async () => {
  const c = cache(60_000);
  await c.get();
  clock += 2_000;
  await c.get({ maxAgeMs: 5_000 });
  expect(s3.gets).toHaveLength(1);
  clock += 4_000;
  await c.get({ maxAgeMs: 5_000 });
  expect(s3.gets).toHaveLength(2);
});

test('a failed revalidation keeps serving the cached value, is reported, and is not retried before another TTL', async () => {
  const errors: unknown[] = [];
  const c = cache(5_000, (err) => errors.push(err));
  await c.get();
  s3.failNext = 1;
  clock += 5_000;
  expect((await c.get())?.value.n).toBe(1);
  await settle();
  expect(errors).toHaveLength(1);
  for (let i = 0; i < 20; i++) expect((await c.get())?.value.n).toBe(1);
  await settle();
  expect(s3.gets).toHaveLength(2);
  clock += 5_000;
  await c.get();
  await settle();
  expect(s3.gets).toHaveLength(3);
});

test('a first load that fails rejects its callers and is not cached: the next caller tries again', async () => {
  const c = cache();
  s3.failNext = 1;
  await expect(Promise.all([c.get(), c.get()])).rejects.toThrow(/service unavailable/);
  expect(s3.gets).toHaveLength(1);
  expect((await c.get())?.value.n).toBe(1);
});

test('an absent object is cached as absent for the TTL, and found once it exists', async () => {
  s3.objects.clear();
  const c = cache(5_000);
  expect(await c.get()).toBeUndefined();
  s3.put(KEY, '{"n":9}');
  expect(await c.get()).toBeUndefined();
  expect((await c.get(FRESH))?.value.n).toBe(9);
});

test('ShardConfigCache.snapshot reads config.jsonc and groups.jsonc through the cache, like ShardConfigStore.load', async () => {
  const config = {
    cluster: { id: 'c', storage: { provider: 's3', bucket: 'bucket-b', region: 'us-east-1' }, secrets: { provider: 'aws-secrets-manager', prefix: 'nstance/c/' } },
    shard: { id: 's1', infra: { provider: 'aws', region: 'us-east-1', zone: 'us-east-1a' }, subnet_pools: { p: ['subnet-1'] } },
    templates: { web: { kind: 'web', arch: 'arm64', instance_type: 'm7g.large', subnet_pool: 'p', args: { ImageId: 'ami-1' } } },
    groups: { default: { web: { template: 'web', size: 2 } } },
  };
  s3.put('shard/s1/config.jsonc', JSON.stringify(config));
  const shard = new ShardConfigCache(new ObjectStore({ s3: s3 as unknown as S3Client, bucket: 'bucket-b' }), 's1', { now: () => clock });
  const [a, b] = await Promise.all([shard.snapshot(), shard.config()]);
  expect(a?.config.cluster.id).toBe('c');
  expect(a?.groupsEtag).toBeUndefined();
  expect(b?.config).toBe(a?.config);
  expect(s3.gets.map((g) => [g.key, g.outcome])).toEqual([
    ['shard/s1/config.jsonc', 'body'],
    ['shard/s1/groups.jsonc', 'missing'],
  ]);
  expect(shard.peekConfig()).toBe(a?.config);
});
