/**
 * The secret files of a group, as /v1/files delivers them. Listing the secret store and
 * reading every value on each request would cost a fleet one list (and one read per file)
 * per agent per fetch, so a group's files are held for a short TTL and loaded once however
 * many agents ask together. A rotated secret reaches agents at most one TTL later:
 * `cluster.secrets.cache_ttl` when set, DEFAULT_SECRET_FILES_TTL_MS otherwise.
 */
import type { SecretStore } from '../../adapters/secrets/store';
import { secretsCacheTtlMs, type SecretsConfig } from '../../common/config/secrets';
import { TtlCache } from './ttl-cache';

export const DEFAULT_SECRET_FILES_TTL_MS = 30_000;

export interface SecretFile {
  /** Where the agent writes it, e.g. /etc/app/token. */
  path: string;
  /** Where the secret lives (its full name or object key; never its value). */
  source: string;
  content: string;
}

/**
 * Secret names under `files/<tenant>/<group>/` (relative to cluster.secrets.prefix) map to files:
 * `files/default/web/etc/app/token` is delivered as /etc/app/token.
 */
export function filesPrefix(tenant: string, group: string): string {
  return `files/${tenant}/${group}/`;
}

export class SecretFiles {
  /** One cache per TTL in use (the default, or cache_ttl): a config change of cache_ttl takes effect at once. */
  private readonly caches = new Map<number, TtlCache<string, SecretFile[]>>();

  constructor(private readonly options: { ttlMs?: number; now?: () => number } = {}) {}

  /** `uncachedTtlMs`: the TTL used instead when caching is off (a health report's look must not read the store each time). */
  forGroup(store: SecretStore, tenant: string, group: string, secrets?: SecretsConfig, uncachedTtlMs = 0): Promise<SecretFile[]> {
    const under = filesPrefix(tenant, group);
    const ttlMs = ((secrets && secretsCacheTtlMs(secrets)) ?? this.options.ttlMs ?? DEFAULT_SECRET_FILES_TTL_MS) || uncachedTtlMs;
    if (ttlMs <= 0) return this.load(store, under);
    let cache = this.caches.get(ttlMs);
    if (!cache) {
      cache = new TtlCache({ ttlMs, now: this.options.now, maxEntries: 1000 });
      this.caches.set(ttlMs, cache);
    }
    return cache.get(`${store.provider}\u0000${store.prefix}\u0000${under}`, () => this.load(store, under));
  }

  private async load(store: SecretStore, under: string): Promise<SecretFile[]> {
    const out: SecretFile[] = [];
    for (const name of await store.list(under)) {
      const path = `/${name.slice(under.length)}`;
      // A secret name is a path: refuse anything that would climb out of the root.
      if (path.split('/').some((part) => part === '..' || part === '.')) continue;
      const content = await store.get(name);
      if (content !== undefined) out.push({ path, source: store.locate(name), content });
    }
    return out;
  }
}
