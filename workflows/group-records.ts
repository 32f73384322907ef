/**
 * Instance records (adapters/s3/instance-records.ts) written by the group, which hears every transition
 * that matters to it: the records changed since the last pass go out in one activity per pass (up to
 * RECORD_BATCH), so a fleet of thousands costs a few activities per pass, not one per instance and
 * transition. Records still queued at continue-as-new cross it (workflows/group-records-carry.ts, from
 * CARRY_RECORDS_PATCH on), and garbage collection deletes records of ended instances after the retention.
 */
import { patched } from '@temporalio/workflow';
import type { GroupRef, InstanceUpdate } from '../common/types';
import { groupRecordActivities, heartbeatingRecordActivities } from './activity-options';
import { recordOf } from './group-records-carry';
import type { GroupState } from './group-state';
import { runStep } from './group-steps';

/** Runs started before instance records write none (their commands stay as recorded). */
export const RECORDS_PATCH = '10-instance-records';
export const RECORD_BATCH = 1000;
/** Runs before this schedule the batch without a heartbeat timeout (the activity heartbeats either way). */
export const RECORDS_HEARTBEAT_PATCH = '10-instance-records-heartbeat';
/** Runs before this drop the records still queued when they continue as new. */
export const CARRY_RECORDS_PATCH = '10-carry-instance-records';

export { recordOf } from './group-records-carry';

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
  const records = patched(RECORDS_HEARTBEAT_PATCH) ? heartbeatingRecordActivities : groupRecordActivities;
  const written = await runStep(state.steps, 'records', () => records.writeInstanceRecords(batch), { ...ref });
  if (written === undefined) return;
  // A record queued again meanwhile (a newer transition) stays for the next pass.
  for (const r of batch) if (queued[r.id] === r) delete queued[r.id];
}
