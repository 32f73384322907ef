import { WorkflowIdConflictPolicy, type Client } from '@temporalio/client';
import { instanceWorkflowId, shardTaskQueue } from '../../common/names';
import { searchAttributeUpdates } from '../../common/search-attributes';
import type { InstanceWorkflowInput } from '../../common/types';

/**
 * Starts instance workflows as independent workflows, not children: a group
 * may own thousands, beyond what one workflow may hold pending. Deterministic
 * ids plus USE_EXISTING make a retried start a no-op.
 */
export async function startInstanceWorkflows(
  client: Client,
  inputs: InstanceWorkflowInput[],
  paceMs: number,
  onStarted: (workflowId: string) => void = () => undefined,
): Promise<string[]> {
  const started: string[] = [];
  for (const [index, input] of inputs.entries()) {
    // Spacing creations (shard.create_rate_limit) keeps a large scale-up from bursting EC2.
    if (index > 0 && paceMs > 0) await new Promise((resolve) => setTimeout(resolve, paceMs));
    const workflowId = instanceWorkflowId(input.shard, input.instanceId);
    await client.workflow.start('instanceWorkflow', {
      workflowId,
      taskQueue: shardTaskQueue(input.shard),
      args: [input],
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
      typedSearchAttributes: searchAttributeUpdates({
        NstanceShard: input.shard,
        NstanceGroup: `${input.tenant}/${input.group}`,
        NstancePhase: 'provisioning',
      }),
    });
    started.push(workflowId);
    onStarted(workflowId);
  }
  return started;
}
