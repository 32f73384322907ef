import { WorkflowExecutionAlreadyStartedError, WorkflowIdConflictPolicy, WorkflowIdReusePolicy, type Client } from '@temporalio/client';
import { instanceWorkflowId, shardTaskQueue } from '../../common/names';
import { searchAttributeUpdates } from '../../common/search-attributes';
import type { InstanceWorkflowInput } from '../../common/types';

/**
 * Starts instance workflows as independent workflows, not children: a group
 * may own thousands, beyond what one workflow may hold pending. Deterministic
 * ids plus USE_EXISTING make a retried start a no-op; REJECT_DUPLICATE keeps a
 * retry from starting a second run of an instance whose first run already ended
 * (instance ids are never reused). `onStarted` gets the count started so far, so
 * a retried activity resumes where its last heartbeat left off instead of pacing
 * through the whole list again.
 */
export async function startInstanceWorkflows(
  client: Client,
  inputs: InstanceWorkflowInput[],
  paceMs: number,
  onStarted: (count: number, workflowId: string) => void = () => undefined,
  alreadyStarted = 0,
): Promise<string[]> {
  const started: string[] = inputs.slice(0, alreadyStarted).map((input) => instanceWorkflowId(input.shard, input.instanceId));
  for (const [index, input] of inputs.entries()) {
    if (index < alreadyStarted) continue;
    // Spacing creations (shard.create_rate_limit) keeps a large scale-up from bursting EC2.
    if (index > alreadyStarted && paceMs > 0) await new Promise((resolve) => setTimeout(resolve, paceMs));
    const workflowId = instanceWorkflowId(input.shard, input.instanceId);
    try {
      await client.workflow.start('instanceWorkflow', {
        workflowId,
        taskQueue: shardTaskQueue(input.shard),
        args: [input],
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
        workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
        typedSearchAttributes: searchAttributeUpdates({
          NstanceShard: input.shard,
          NstanceGroup: `${input.tenant}/${input.group}`,
          NstancePhase: 'provisioning',
        }),
      });
    } catch (err) {
      // Started and already finished (a launch that failed fast): it has reported to its group.
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    }
    started.push(workflowId);
    onStarted(started.length, workflowId);
  }
  return started;
}
