import type { Client } from '@temporalio/client';
import { optionalTsToMs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import { shardWorkersView, type ShardWorkersView, type TaskQueuePoller } from '../adapters/aws/shard-limits';

/** A count that takes longer than this is given up (and tried again at the next refresh). */
const DESCRIBE_DEADLINE_MS = 10_000;

/** The pollers of a task queue's activity side: one per worker process (its identity) that serves it. */
export async function activityPollers(client: Client, namespace: string, taskQueue: string, signal?: AbortSignal): Promise<TaskQueuePoller[]> {
  const describe = () =>
    client.withDeadline(Date.now() + DESCRIBE_DEADLINE_MS, () =>
      client.workflowService.describeTaskQueue({
        namespace,
        taskQueue: { name: taskQueue, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
        taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
      }),
    );
  const { pollers } = await (signal ? client.withAbortSignal(signal, describe) : describe());
  return (pollers ?? []).map((p) => ({ identity: p.identity ?? '', lastAccessMs: optionalTsToMs(p.lastAccessTime) }));
}

/** Counts, for one worker, the other live workers of its shard (the shard task queue's activity pollers). */
export function shardWorkerCounter(client: Client, namespace: string, taskQueue: string, identity: string): (signal?: AbortSignal) => Promise<ShardWorkersView> {
  const startedAtMs = Date.now();
  return async (signal) => shardWorkersView(await activityPollers(client, namespace, taskQueue, signal), { identity, startedAtMs }, Date.now());
}
