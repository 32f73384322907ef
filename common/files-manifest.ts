/**
 * The set of files an agent holds, as both ends see it: the agent hashes what it wrote (read back
 * from disk, so a file deleted or edited on the instance counts as stale), the agent API hashes
 * what it would deliver now. One digest over the sorted (path, mode, content sha256) triples says
 * whether anything differs; the per-file list, sent only when the digests differ, says what.
 */
import { createHash } from 'node:crypto';

export interface ManifestEntry {
  path: string;
  mode: string;
  /** Hex sha256 of the content; '' for a file the agent cannot read (missing). */
  sha256: string;
}

/** A certificate file whose key the agent is to make (or reuse) at keyPath, submitting only its public key for `path`. */
export interface KeyRequest {
  path: string;
  keyPath: string;
  publicKeyPath: string;
}

/** Entries a health report carries at most: a bounded body however many files an instance gets. */
export const MAX_REPORTED_FILES = 256;
export const MAX_REPORTED_PATH = 1024;

export function contentSha256(content: string | Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}

/** One digest for a set of files (order-free). */
export function fileSetHash(entries: readonly ManifestEntry[]): string {
  const hash = createHash('sha256');
  for (const e of [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) hash.update(`${e.path}\u0000${e.mode}\u0000${e.sha256}\n`);
  return hash.digest('hex');
}

export interface StaleFiles {
  /** Held with other content or mode than the server would deliver now (or unreadable on the instance). */
  changed: string[];
  /** The server delivers them; the agent does not hold them. */
  missing: string[];
  /** The agent holds them; the server no longer delivers them (a file removed from the template). */
  extra: string[];
}

/** Which of the agent's files differ from what the server would deliver. */
export function staleFiles(expected: readonly ManifestEntry[], held: readonly ManifestEntry[]): StaleFiles {
  const heldByPath = new Map(held.map((e) => [e.path, e]));
  const expectedPaths = new Set(expected.map((e) => e.path));
  const out: StaleFiles = { changed: [], missing: [], extra: [] };
  for (const e of expected) {
    const h = heldByPath.get(e.path);
    if (!h) out.missing.push(e.path);
    else if (h.sha256 !== e.sha256 || h.mode !== e.mode) out.changed.push(e.path);
  }
  for (const h of held) if (!expectedPaths.has(h.path)) out.extra.push(h.path);
  return out;
}

/** A health report's `files` field, checked and bounded; a message naming the problem otherwise. */
export function parseReportedFiles(value: unknown): { hash: string; held?: ManifestEntry[]; truncated?: boolean } | string {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return '"files" must be an object {hash, held?}';
  const { hash, held, truncated } = value as Record<string, unknown>;
  if (typeof hash !== 'string' || !/^[0-9a-f]{64}$/.test(hash)) return '"files.hash" must be a hex sha256';
  if (held === undefined) return { hash };
  if (!Array.isArray(held) || held.length > MAX_REPORTED_FILES) return `"files.held" must be a list of at most ${MAX_REPORTED_FILES} entries`;
  const entries: ManifestEntry[] = [];
  for (const [i, e] of held.entries()) {
    const { path, mode, sha256 } = (e ?? {}) as Record<string, unknown>;
    if (typeof path !== 'string' || path === '' || path.length > MAX_REPORTED_PATH) return `"files.held[${i}].path" must be a file path of at most ${MAX_REPORTED_PATH} characters`;
    if (typeof mode !== 'string' || !/^0?[0-7]{3}$/.test(mode)) return `"files.held[${i}].mode" must be an octal mode`;
    if (typeof sha256 !== 'string' || !/^([0-9a-f]{64})?$/.test(sha256)) return `"files.held[${i}].sha256" must be a hex sha256 or ""`;
    entries.push({ path, mode, sha256 });
  }
  return { hash, held: entries, ...(truncated === true ? { truncated: true } : {}) };
}
