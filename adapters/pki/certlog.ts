/**
 * The certificate log: one create-only S3 object per issued certificate, so an
 * operator can list what the CA signed (and revoke by serial) from S3 alone.
 */
import { createHash } from 'node:crypto';
import { ObjectStore, type CallOptions } from '../s3/objects';

export interface CertLogEntry {
  kind: 'agent-client' | 'agent-api-server' | 'instance-file';
  /** For an instance-file certificate: the file's name in the template's `files` map. */
  file?: string;
  cluster: string;
  shard: string;
  tenant: string;
  group?: string;
  /** Instance id for agent certificates, worker id for server certificates. */
  id: string;
  serialNumber: string;
  subject: string;
  notBefore: string;
  notAfter: string;
  publicKeySha256: string;
  issuedAt: string;
  /** The registration nonce's id (never the nonce itself). */
  nonceId?: string;
  /** For a renewal: the serial of the certificate it replaces (presented over mTLS to get this one). */
  renewalOf?: string;
  reportedIp?: string;
  hostname?: string;
  issuer: string;
  /** Leadership epoch of the agent API that issued it: tells which leader signed what across a handoff. */
  leaderEpoch?: number;
}

/** yyyyMMddHHmmssSSS in UTC. */
export function certLogStamp(at: Date): string {
  if (Number.isNaN(at.getTime())) throw new Error('certificate log needs a valid time');
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return (
    `${p(at.getUTCFullYear(), 4)}${p(at.getUTCMonth() + 1)}${p(at.getUTCDate())}` +
    `${p(at.getUTCHours())}${p(at.getUTCMinutes())}${p(at.getUTCSeconds())}${p(at.getUTCMilliseconds(), 3)}`
  );
}

export function certLogPrefix(shard: string): string {
  return `shard/${shard}/certlog/`;
}

export function certLogKey(shard: string, tenant: string, at: Date, id: string): string {
  return `${certLogPrefix(shard)}${tenant}.${certLogStamp(at)}.${id}.json`;
}

export async function writeCertLog(objects: ObjectStore, entry: CertLogEntry, call: CallOptions = {}): Promise<string> {
  // An instance's file certificates may be issued in the same millisecond: each file gets its own key.
  const id = entry.file === undefined ? entry.id : `${entry.id}-${createHash('sha256').update(entry.file).digest('hex').slice(0, 8)}`;
  const key = certLogKey(entry.shard, entry.tenant, new Date(entry.issuedAt), id);
  // Create-only: a log entry is never rewritten.
  await objects.write(key, `${JSON.stringify(entry, null, 2)}\n`, { absent: true }, call);
  return key;
}
