/**
 * Instance records (adapters/s3/instance-records.ts) written by the group, which hears every transition
 * that matters to it: the records changed since the last pass go out in one activity per pass (up to
 * RECORD_BATCH), so a fleet of thousands costs a few activities per pass, not one per instance and
 * transition. Run-only state: a record lost to continue-as-new is rewritten on the next transition, and
 * garbage collection deletes records of ended instances after the retention.
 */
import type { GroupRef, InstanceRecord, InstanceUpdate, Member } from '../common/types';
import { groupRecordActivities } from './activity-options';
import type { GroupState } from './group-state';
import { runStep } from './group-steps';

/** Runs started before instance records write none (their commands stay as recorded). */
export const RECORDS_PATCH = '10-instance-records';
export const RECORD_BATCH = 1000;

export function recordOf(ref: GroupRef, m: Member | InstanceUpdate, now: number): InstanceRecord {
  const member = m as Partial<Member>;
  const record: InstanceRecord = { shard: ref.shard, tenant: ref.tenant, group: ref.group, id: m.instanceId, phase: m.phase, updatedAt: new Date(now).toISOString() };
  if (m.ec2InstanceId) record.ec2InstanceId = m.ec2InstanceId;
  if (m.privateIp) record.privateIp = m.privateIp;
  if (m.launchedAt) record.launchedAt = m.launchedAt;
  if (m.health) record.health = m.health;
  if (m.expiry) record.expiry = m.expiry;
  if (member.replacing) record.replacing = member.replacing.reason;
  if (member.leaving) record.leaving = true;
  return record;
}

/** Queues the record of a member (or, once it is forgotten, of its last report). No-op where records are off. */
export function queueRecord(ref: GroupRef, state: GroupState, update: InstanceUpdate, now: number): void {
  if (!state.records) return;
  state.records[update.instanceId] = recordOf(ref, state.members[update.instanceId] ?? update, now);
}

export async function flushRecords(ref: GroupRef, state: GroupState): Promise<void> {
  const queued = state.records;
  if (!queued) return;
  const batch = Object.values(queued).slice(0, RECORD_BATCH);
  if (batch.length === 0) return;
  const written = await runStep(state.steps, 'records', () => groupRecordActivities.writeInstanceRecords(batch), { ...ref });
  if (written === undefined) return;
  // A record queued again meanwhile (a newer transition) stays for the next pass.
  for (const r of batch) if (queued[r.id] === r) delete queued[r.id];
}
