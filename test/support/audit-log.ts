/** The shard's audit log as tests read it back. */
import type { S3Client } from '@aws-sdk/client-s3';
import { s3Keys } from '../../common/names';
import type { AuditEntry } from '../../common/types';
import { listKeys, readJson } from './emulator';

export async function readAuditLog(s3: S3Client, bucket: string, shard: string): Promise<AuditEntry[]> {
  return Promise.all((await listKeys(s3, bucket, s3Keys.auditPrefix(shard))).map((k) => readJson<AuditEntry>(s3, bucket, k)));
}

export interface AuditedCreation {
  instanceId: string;
  ec2InstanceId?: string;
  adopted?: boolean;
}

/** Every instance creation audited: one per instance entry, or one per instance of a start batch's entry. */
export function auditedCreations(entries: readonly AuditEntry[]): AuditedCreation[] {
  return entries
    .filter((e) => e.action === 'instance.create')
    .flatMap((e) => {
      const batch = e.details?.instances as Record<string, { ec2InstanceId?: string; adopted?: boolean }> | undefined;
      if (batch) return Object.entries(batch).map(([instanceId, i]) => ({ instanceId, ec2InstanceId: i.ec2InstanceId, adopted: i.adopted }));
      return (e.instanceIds ?? []).map((instanceId, n) => ({ instanceId, ec2InstanceId: e.ec2InstanceIds?.[n], adopted: e.details?.adopted as boolean | undefined }));
    });
}
