/**
 * The secret files of a group, as /v1/files delivers them. Listing Secrets Manager and
 * reading every value on each request would cost a fleet one ListSecrets (and one
 * GetSecretValue per file) per agent per fetch, so a group's files are held for a short
 * TTL and loaded once however many agents ask together. A rotated secret reaches agents
 * at most one TTL later. (Nstance's `cluster.secrets.cache_ttl` will set the TTL.)
 */
import type { SecretStore } from '../../adapters/secrets/store';
import { TtlCache } from './ttl-cache';

export const DEFAULT_SECRET_FILES_TTL_MS = 30_000;

export interface SecretFile {
  /** Where the agent writes it, e.g. /etc/app/token. */
  path: string;
  /** The secret's name (never its value). */
  source: string;
  content: string;
}

/**
 * Secrets Manager names under `<prefix>files/<tenant>/<group>/` map to files:
 * `.../files/default/web/etc/app/token` is delivered as /etc/app/token.
 */
export function filesPrefix(secretsPrefix: string, tenant: string, group: string): string {
  return `${secretsPrefix}files/${tenant}/${group}/`;
}

export class SecretFiles {
  private readonly cache: TtlCache<string, SecretFile[]>;

  constructor(
    private readonly secrets: SecretStore,
    options: { ttlMs?: number; now?: () => number } = {},
  ) {
    this.cache = new TtlCache({ ttlMs: options.ttlMs ?? DEFAULT_SECRET_FILES_TTL_MS, now: options.now, maxEntries: 1000 });
  }

  forGroup(secretsPrefix: string, tenant: string, group: string): Promise<SecretFile[]> {
    const prefix = filesPrefix(secretsPrefix, tenant, group);
    return this.cache.get(prefix, () => this.load(prefix));
  }

  private async load(prefix: string): Promise<SecretFile[]> {
    const out: SecretFile[] = [];
    for (const name of await this.secrets.listNames(prefix)) {
      const path = `/${name.slice(prefix.length)}`;
      // A secret name is a path: refuse anything that would climb out of the root.
      if (path.split('/').some((part) => part === '..' || part === '.')) continue;
      const content = await this.secrets.read(name);
      if (content !== undefined) out.push({ path, source: name, content });
    }
    return out;
  }
}
