/** The group's instance records (adapters/s3/instance-records.ts), written a batch per pass. */
import { Context } from '@temporalio/activity';
import type { InstanceRecord } from '../common/types';
import { writeInstanceRecords } from '../adapters/s3/instance-records';
import type { ActivityDeps } from './deps';

export function createInstanceRecordActivities(deps: ActivityDeps) {
  return {
    /** Overwrites each record (a retry writes the same objects again: harmless). */
    async writeInstanceRecords(records: InstanceRecord[]): Promise<number> {
      const ctx = Context.current();
      return writeInstanceRecords({ s3: deps.aws.s3, bucket: deps.bucket }, records, () => ctx.cancellationSignal.throwIfAborted());
    },
  };
}
