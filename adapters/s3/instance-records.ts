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

export async function writeInstanceRecords(store: RecordStore, records: InstanceRecord[], onDone: (n: number) => void = () => undefined): Promise<number> {
  let next = 0;
  let done = 0;
  const worker = async () => {
    for (let i = next++; i < records.length; i = next++) {
      const r = records[i];
      const key = s3Keys.instance(r.shard, r.tenant, r.id);
      try {
        await store.s3.send(new PutObjectCommand({ Bucket: store.bucket, Key: key, Body: `${JSON.stringify(r)}\n`, ContentType: 'application/json' }));
      } catch (err) {
        throw classifyAwsError(err, `writing s3://${store.bucket}/${key}`);
      }
      onDone(++done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(WRITE_CONCURRENCY, records.length) }, worker));
  return done;
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
