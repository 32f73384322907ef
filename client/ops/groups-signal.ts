import { WorkflowIdConflictPolicy, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { gcWorkflowId, groupWorkflowId, shardTaskQueue } from '../../common/names';
import { gcRunMetadata, groupRunMetadata, type GroupFacts } from '../../common/run-summaries';
import { searchAttributeUpdates } from '../../common/search-attributes';
import type { GroupRef } from '../../common/types';
import { reconcileSignal, type ReconcileRequest } from '../../workflows/definitions';

/** The run a command started or signalled, for its Web UI link. */
export interface SignalledRun {
  workflowId: string;
  runId?: string;
}

/**
 * Wakes a group workflow, starting it first when it does not run yet (idempotent by workflow id).
 * `facts` (size, template) go into the static summary of a run this starts.
 */
export async function signalGroup(client: Client, ref: GroupRef, request: ReconcileRequest, facts?: GroupFacts): Promise<SignalledRun> {
  const handle = await client.workflow.signalWithStart('groupWorkflow', {
    workflowId: groupWorkflowId(ref.shard, ref.tenant, ref.group),
    taskQueue: shardTaskQueue(ref.shard),
    args: [{ shard: ref.shard, tenant: ref.tenant, group: ref.group }],
    ...groupRunMetadata(ref, facts),
    signal: reconcileSignal,
    signalArgs: [request],
    typedSearchAttributes: searchAttributeUpdates({ NstanceShard: ref.shard, NstanceGroup: `${ref.tenant}/${ref.group}` }),
  });
  return { workflowId: handle.workflowId, runId: handle.signaledRunId };
}

/** Wakes a group workflow only if it runs (a removed group must not be started again). */
export async function signalGroupIfRunning(client: Client, ref: GroupRef, request: ReconcileRequest): Promise<boolean> {
  try {
    await client.workflow.getHandle(groupWorkflowId(ref.shard, ref.tenant, ref.group)).signal(reconcileSignal, request);
    return true;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}

export function parseGroupRef(text: string, shard: string): GroupRef {
  const match = /^([^/\s]+)\/([^/\s]+)$/.exec(text);
  if (!match) throw new Error(`"${text}" is not a group: write it as TENANT/GROUP, for example default/web`);
  return { shard, tenant: match[1], group: match[2] };
}

/** The shard's garbage collector runs once per shard; starting it again is a no-op. */
export async function ensureGarbageCollector(client: Client, shard: string): Promise<SignalledRun> {
  const handle = await client.workflow.start('gcWorkflow', {
    workflowId: gcWorkflowId(shard),
    taskQueue: shardTaskQueue(shard),
    args: [{ shard }],
    ...gcRunMetadata(shard),
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    typedSearchAttributes: searchAttributeUpdates({ NstanceShard: shard }),
  });
  return { workflowId: handle.workflowId, runId: handle.firstExecutionRunId };
}
