/**
 * The cluster's secret store, whichever provider the config names (Secrets Manager, Parameter
 * Store, encrypted objects): one small interface so the PKI, the agent API's files, key rotation
 * and `nstance secrets` never care which. Names are relative to the configured prefix
 * ("ca-key", "files/default/web/etc/app/token"). Values never go to logs or workflow history:
 * callers get them back only in memory.
 */
import type { SecretProvider } from '../../common/config/secrets';

export interface SecretStore {
  readonly provider: SecretProvider;
  /** The configured prefix every name is under. */
  readonly prefix: string;
  /** Where `name` lives, for messages and file sources (the full name or object key; never a value). */
  locate(name: string): string;
  get(name: string): Promise<string | undefined>;
  /** Creates or replaces. */
  put(name: string, value: string): Promise<void>;
  /** True when something was deleted. */
  delete(name: string): Promise<boolean>;
  /** Names (relative) starting with `under`, sorted. */
  list(under?: string): Promise<string[]>;
  /**
   * Creates `name` with `make()`'s value unless it exists; the store's conditional create picks
   * one winner, and every loser reads the winner's value, so all callers end up with the same.
   */
  createIfAbsent(name: string, make: () => string, description: string): Promise<{ value: string; created: boolean }>;
}

/** A relative secret name: path-like, never climbing out of the prefix. */
export function checkSecretName(name: string): string {
  if (name === '' || name.startsWith('/') || name.endsWith('/') || name.split('/').some((part) => part === '' || part === '.' || part === '..')) {
    throw new Error(`invalid secret name "${name}": use a relative path such as "files/default/web/etc/app/token" (no leading or trailing "/", no "." or ".." parts)`);
  }
  if (!/^[A-Za-z0-9/_+=.@-]+$/.test(name)) throw new Error(`invalid secret name "${name}": use letters, digits and /_+=.@- only`);
  return name;
}

/** After a lost create race the winner's value can briefly be unreadable (eventual consistency): read a few times. */
export async function readWinner(read: () => Promise<string | undefined>, where: string): Promise<string> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const winner = await read();
    if (winner !== undefined) return winner;
    await new Promise((r) => setTimeout(r, 100 * (attempt + 1)));
  }
  throw new Error(`secret ${where} exists but cannot be read yet; retry`);
}
