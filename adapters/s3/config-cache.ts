/**
 * The shard's config.jsonc and groups.jsonc, parsed and held in memory, so that nothing
 * per launch or per agent request reads S3. A read gets the cached value at once; once
 * it is older than the TTL, one background revalidation asks S3 with If-None-Match
 * (a 304 costs no download). Concurrent callers share one in-flight load. A caller
 * that must see what was just written (the group workflow after `config apply`) asks
 * for a bounded age: `{ maxAgeMs: 0 }` waits for a load that started after its call.
 */
import {
  emptyDynamicGroups,
  parseConfigText,
  parseDynamicGroupsText,
  validateDynamicGroups,
  withoutOrphanOverrides,
  type DynamicGroups,
  type NstanceConfig,
} from '../../common/config';
import { s3Keys } from '../../common/names';
import type { ShardConfigSnapshot } from './config-store';
import type { ObjectStore } from './objects';

export const DEFAULT_CONFIG_TTL_MS = 5_000;

/** How old a cached value may be. Omitted: the cached value, revalidated in the background after the TTL. */
export interface Freshness {
  /** 0: a value read from S3 after this call began (joins a load that started after it, else starts one). */
  maxAgeMs?: number;
}

/** Guaranteed fresh: read (conditionally) after the call began. */
export const FRESH: Freshness = { maxAgeMs: 0 };

export interface Cached<T> {
  value: T;
  etag: string;
}

interface Entry<T> {
  /** undefined: the object does not exist. */
  found: Cached<T> | undefined;
  /** When the S3 request that produced (or confirmed) it was sent. */
  validatedAt: number;
}

export interface CacheOptions {
  ttlMs?: number;
  now?: () => number;
  /** A background revalidation failed (the previous value is kept and served). */
  onError?: (err: unknown, key: string) => void;
}

/** One S3 object, parsed once per version. */
export class CachedObject<T> {
  private current: Entry<T> | undefined;
  private inflight: { startedAt: number; promise: Promise<Entry<T>> } | undefined;
  /** A load queued behind the in-flight one, for callers that need one started after their call. */
  private queued: Promise<Entry<T>> | undefined;
  /** A failed background revalidation is not retried before this time (an S3 outage costs one request per TTL). */
  private quietUntil = 0;
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(
    private readonly objects: ObjectStore,
    readonly key: string,
    private readonly parse: (text: string, location: string) => T,
    private readonly options: CacheOptions = {},
  ) {
    this.ttlMs = options.ttlMs ?? DEFAULT_CONFIG_TTL_MS;
    this.now = options.now ?? Date.now;
  }

  async get(freshness: Freshness = {}): Promise<Cached<T> | undefined> {
    const now = this.now();
    const current = this.current;
    if (freshness.maxAgeMs === undefined) {
      if (!current) return (await (this.inflight?.promise ?? this.start())).found;
      if (now - current.validatedAt >= this.ttlMs && !this.inflight && now >= this.quietUntil) this.revalidateInBackground();
      return current.found;
    }
    const notBefore = now - Math.max(0, freshness.maxAgeMs);
    if (freshness.maxAgeMs > 0 && current && current.validatedAt >= notBefore) return current.found;
    if (freshness.maxAgeMs > 0 && this.inflight && this.inflight.startedAt >= notBefore) return (await this.inflight.promise).found;
    return (await this.loadAfterNow()).found;
  }

  get location(): string {
    return `s3://${this.objects.bucket}/${this.key}`;
  }

  /** What is cached now, without any S3 request (undefined before the first load). */
  peek(): Cached<T> | undefined {
    return this.current?.found;
  }

  private revalidateInBackground(): void {
    this.start().catch((err: unknown) => {
      this.quietUntil = this.now() + this.ttlMs;
      this.options.onError?.(err, this.key);
    });
  }

  /** A load that starts no earlier than now: the in-flight one started before, so wait for it and start the next. */
  private loadAfterNow(): Promise<Entry<T>> {
    if (!this.inflight) return this.start();
    this.queued ??= this.inflight.promise
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        // Anything in flight now was started after the previous load settled, so after our callers arrived.
        return this.inflight?.promise ?? this.start();
      });
    return this.queued;
  }

  private start(): Promise<Entry<T>> {
    const startedAt = this.now();
    const promise = this.fetch(startedAt).finally(() => {
      if (this.inflight?.promise === promise) this.inflight = undefined;
    });
    this.inflight = { startedAt, promise };
    return promise;
  }

  private async fetch(startedAt: number): Promise<Entry<T>> {
    const previous = this.current?.found;
    const read = previous ? await this.objects.readIfChanged(this.key, previous.etag) : await this.objects.read(this.key);
    let found: Cached<T> | undefined;
    if (read === 'unchanged') found = previous;
    else if (read) found = { value: this.parse(read.text, this.location), etag: read.etag };
    const entry: Entry<T> = { found, validatedAt: startedAt };
    // A slower, older load never replaces what a newer one found.
    if (!this.current || this.current.validatedAt <= startedAt) this.current = entry;
    return entry;
  }
}

/** config.jsonc and groups.jsonc of one shard. Drop-in for ShardConfigStore's reads. */
export class ShardConfigCache {
  private readonly configObject: CachedObject<NstanceConfig>;
  private readonly groupsObject: CachedObject<DynamicGroups>;

  constructor(
    objects: ObjectStore,
    readonly shard: string,
    options: CacheOptions = {},
  ) {
    this.configObject = new CachedObject(objects, s3Keys.config(shard), parseConfigText, options);
    this.groupsObject = new CachedObject(objects, s3Keys.groups(shard), parseDynamicGroupsText, options);
  }

  /** The parsed config.jsonc and its ETag; undefined while none has been applied. */
  async config(freshness?: Freshness): Promise<{ config: NstanceConfig; etag: string } | undefined> {
    const found = await this.configObject.get(freshness);
    return found && { config: found.value, etag: found.etag };
  }

  /** As ShardConfigStore.load(): both files, dynamic groups checked against the config. */
  async snapshot(freshness?: Freshness): Promise<ShardConfigSnapshot | undefined> {
    const [stored, groups] = await Promise.all([this.configObject.get(freshness), this.groupsObject.get(freshness)]);
    if (!stored) return undefined;
    const { dynamic, orphans } = withoutOrphanOverrides(stored.value, groups?.value ?? emptyDynamicGroups());
    validateDynamicGroups(stored.value, dynamic, this.groupsObject.location);
    return { config: stored.value, configEtag: stored.etag, dynamic, groupsEtag: groups?.etag, orphanOverrides: orphans };
  }

  /** The config last loaded, without any S3 request. */
  peekConfig(): NstanceConfig | undefined {
    return this.configObject.peek()?.value;
  }
}

/**
 * One ShardConfigCache per shard for a worker process: the nonce issuer, the agent API and
 * the group activities share it, so the process reads each version of the config once.
 */
export class ShardConfigCaches {
  private readonly byShard = new Map<string, ShardConfigCache>();

  constructor(
    private readonly objects: ObjectStore,
    private readonly options: CacheOptions = {},
  ) {}

  for(shard: string): ShardConfigCache {
    let cache = this.byShard.get(shard);
    if (!cache) {
      cache = new ShardConfigCache(this.objects, shard, this.options);
      this.byShard.set(shard, cache);
    }
    return cache;
  }
}
