/** The group's instance records (adapters/s3/instance-records.ts), written a batch per pass. */
import { Context } from '@temporalio/activity';
import type { InstanceRecord } from '../common/types';
import { writeInstanceRecords, type RecordWriteProgress } from '../adapters/s3/instance-records';
import type { ActivityDeps } from './deps';

/**
 * Where a retried attempt of a batch goes on: after the records an earlier attempt heartbeated as
 * written, when its details describe this batch (same size, same record at that point); else from the start.
 */
export function resumeFrom(details: unknown, records: readonly InstanceRecord[]): number {
  if (typeof details !== 'object' || details === null) return 0;
  const { written, of, last } = details as Partial<RecordWriteProgress>;
  if (of !== records.length || typeof written !== 'number' || !Number.isInteger(written) || written <= 0 || written > records.length) return 0;
  return records[written - 1].id === last ? written : 0;
}

export function createInstanceRecordActivities(deps: ActivityDeps) {
  return {
    /**
     * Overwrites each record of the batch, heartbeating the records written (in order) every page: a
     * batch of thousands is not lost to a worker's death, and its retry writes only what is left.
     */
    async writeInstanceRecords(records: InstanceRecord[]): Promise<number> {
      const ctx = Context.current();
      return writeInstanceRecords({ s3: deps.aws.s3, bucket: deps.bucket }, records, {
        from: resumeFrom(ctx.info.heartbeatDetails, records),
        onProgress: (progress) => ctx.heartbeat(progress),
        beforeEach: () => ctx.cancellationSignal.throwIfAborted(),
      });
    },
  };
}
