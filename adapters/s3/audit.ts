import { createHash } from 'node:crypto';
import { s3Keys } from '../../common/names';
import type { AuditEntry } from '../../common/types';
import { recordAudit } from '../metrics/domain-metrics';
import { ObjectStore, WriteConflictError, type CallOptions } from './objects';

/**
 * Audit key: time first so a listing reads chronologically, then the action,
 * then a digest of `dedupeKey`. A retry must pass the same `at` and dedupeKey
 * (workflows pass their own time and the activity's identity), so it lands
 * on the same key and the create-only write makes it a no-op.
 */
export function auditKey(entry: AuditEntry, dedupeKey: string): string {
  const at = new Date(entry.at);
  if (Number.isNaN(at.getTime())) throw new Error(`audit entry has an invalid time "${entry.at}"`);
  const day = at.toISOString().slice(0, 10);
  const stamp = at.toISOString().replace(/[-:.TZ]/g, '');
  const digest = createHash('sha256').update(dedupeKey).digest('hex').slice(0, 16);
  return `${s3Keys.auditPrefix(entry.shard)}${day}/${stamp}.${entry.action}.${digest}.json`;
}

export interface AuditResult {
  key: string;
  written: boolean;
}

export async function writeAudit(store: ObjectStore, entry: AuditEntry, dedupeKey: string, call: CallOptions = {}): Promise<AuditResult> {
  const key = auditKey(entry, dedupeKey);
  try {
    await store.write(key, `${JSON.stringify(entry, null, 2)}\n`, { absent: true }, call);
    // Counted once per object written: a retried write of the same entry lands on the same key and is not counted again.
    recordAudit(entry);
    return { key, written: true };
  } catch (err) {
    // Already there: an earlier attempt of the same call wrote it.
    if (err instanceof WriteConflictError) return { key, written: false };
    throw err;
  }
}
