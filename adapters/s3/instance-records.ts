/**
 * Instance records as Nstance keeps them (`shard/<shard>/instance/<tenant>.<id>.json`): one JSON
 * object per instance, rewritten on each transition its group hears, so other tools can read the
 * fleet from the bucket alone. Records of instances whose workflow has ended are deleted once they
 * are older than the retention (garbage_collection.deleted_record_retention, Nstance's 30m default).
 */
import { DeleteObjectsCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { s3Keys } from '../../common/names';
import type { InstanceRecord } from '../../common/types';
import { classifyAwsError } from '../aws/errors';

/** Writes in flight at once: a scale-up of 2,000 writes 2,000 records in a few passes. */
const WRITE_CONCURRENCY = 16;
/** S3's DeleteObjects takes at most 1,000 keys. */
const DELETE_BATCH = 1000;

export interface RecordStore {
  s3: S3Client;
  bucket: string;
}

/** A batch's progress: records[0, written) are in S3 (heartbeated, so a retried attempt goes on from there). */
export interface RecordWriteProgress {
  written: number;
  of: number;
  /** The id of records[written - 1]: a retry checks it is resuming the same batch. */
  last?: string;
}

/** Progress is reported each time this many more records (in order) are in S3, and at the end. */
export const RECORD_PAGE = 100;
/** And at least this often while writes complete (a slow S3 must not let the activity's heartbeat time out). */
const PROGRESS_EVERY_MS = 5_000;

export interface RecordWriteOptions {
  /** Records before this index are already written (by an earlier attempt). */
  from?: number;
  onProgress?: (progress: RecordWriteProgress) => void;
  /** Called before each write (an activity's cancellation check). */
  beforeEach?: () => void;
}

/**
 * Writes records[from…] (overwriting: a record written twice is harmless), WRITE_CONCURRENCY at a time,
 * reporting the prefix written every RECORD_PAGE records (or PROGRESS_EVERY_MS): writes finish out of order,
 * so the progress a retry may trust is the longest run of written records from the start, never a count.
 */
export async function writeInstanceRecords(store: RecordStore, records: readonly InstanceRecord[], options: RecordWriteOptions = {}): Promise<number> {
  const from = Math.min(records.length, Math.max(0, Math.floor(options.from ?? 0)));
  const done = new Uint8Array(records.length);
  let next = from;
  let prefix = from;
  let reported = from;
  let reportedAt = Date.now();
  const report = () => {
    reported = prefix;
    reportedAt = Date.now();
    options.onProgress?.({ written: prefix, of: records.length, ...(prefix > 0 ? { last: records[prefix - 1].id } : {}) });
  };
  // Once a write fails the attempt is over: the other writers stop too, rather than write on behind its back.
  let failed = false;
  const worker = async () => {
    for (let i = next++; i < records.length && !failed; i = next++) {
      options.beforeEach?.();
      const r = records[i];
      const key = s3Keys.instance(r.shard, r.tenant, r.id);
      try {
        await store.s3.send(new PutObjectCommand({ Bucket: store.bucket, Key: key, Body: `${JSON.stringify(r)}\n`, ContentType: 'application/json' }));
      } catch (err) {
        failed = true;
        throw classifyAwsError(err, `writing s3://${store.bucket}/${key}`);
      }
      done[i] = 1;
      while (prefix < records.length && done[prefix]) prefix++;
      if (prefix - reported >= RECORD_PAGE || Date.now() - reportedAt >= PROGRESS_EVERY_MS) report();
    }
  };
  await Promise.all(Array.from({ length: Math.min(WRITE_CONCURRENCY, records.length - from) }, worker));
  if (reported !== prefix || records.length === 0) report();
  return records.length;
}

export interface StoredRecord {
  key: string;
  tenant: string;
  id: string;
  lastModified: number;
}

/** Every record key of a shard, paged (1,000 a page), with when it was last written. */
export async function listInstanceRecords(store: RecordStore, shard: string): Promise<StoredRecord[]> {
  const prefix = s3Keys.instance(shard, 'x', 'y').slice(0, -'x.y.json'.length);
  const out: StoredRecord[] = [];
  let token: string | undefined;
  do {
    let page;
    try {
      page = await store.s3.send(new ListObjectsV2Command({ Bucket: store.bucket, Prefix: prefix, ContinuationToken: token }));
    } catch (err) {
      throw classifyAwsError(err, `listing s3://${store.bucket}/${prefix}`);
    }
    for (const o of page.Contents ?? []) {
      const match = o.Key && /^(.+)\.([^.]+)\.json$/.exec(o.Key.slice(prefix.length));
      if (o.Key && match) out.push({ key: o.Key, tenant: match[1], id: match[2], lastModified: o.LastModified?.getTime() ?? 0 });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out;
}

export async function deleteInstanceRecords(store: RecordStore, keys: string[]): Promise<number> {
  for (let i = 0; i < keys.length; i += DELETE_BATCH) {
    const batch = keys.slice(i, i + DELETE_BATCH);
    try {
      await store.s3.send(new DeleteObjectsCommand({ Bucket: store.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }));
    } catch (err) {
      throw classifyAwsError(err, `deleting instance records in s3://${store.bucket}`);
    }
  }
  return keys.length;
}

/**
 * Records to delete: older than the retention and no longer owned by a running instance workflow (an
 * instance in service for weeks keeps its record however old it is).
 */
export function expiredRecords(records: StoredRecord[], running: ReadonlySet<string>, now: number, retentionMs: number): StoredRecord[] {
  return records.filter((r) => now - r.lastModified > retentionMs && !running.has(r.id));
}
