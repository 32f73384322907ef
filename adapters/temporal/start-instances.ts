import { WorkflowExecutionAlreadyStartedError, WorkflowIdConflictPolicy, WorkflowIdReusePolicy, type Client } from '@temporalio/client';
import { instanceWorkflowId, shardTaskQueue } from '../../common/names';
import { instanceRunMetadata } from '../../common/run-summaries';
import { searchAttributeUpdates } from '../../common/search-attributes';
import type { InstanceWorkflowInput } from '../../common/types';

/** Starts in flight at once when creations are not spaced (shard.create_rate_limit 0): a batch of 100 in a few round trips. */
const START_CONCURRENCY = 32;

/**
 * Starts instance workflows as independent workflows, not children: a group
 * may own thousands, beyond what one workflow may hold pending. Deterministic
 * ids plus USE_EXISTING make a retried start a no-op; REJECT_DUPLICATE keeps a
 * retry from starting a second run of an instance whose first run already ended
 * (instance ids are never reused). `onStarted` gets how many of `inputs`, from the
 * first, are known started, so a retried activity resumes where its last heartbeat
 * left off instead of pacing through the whole list again.
 */
export async function startInstanceWorkflows(
  client: Client,
  inputs: InstanceWorkflowInput[],
  paceMs: number,
  onStarted: (count: number) => void = () => undefined,
  alreadyStarted = 0,
): Promise<string[]> {
  const ids = inputs.map((input) => instanceWorkflowId(input.shard, input.instanceId));
  const done = new Array<boolean>(inputs.length).fill(false).map((_, i) => i < alreadyStarted);
  let prefix = Math.min(alreadyStarted, inputs.length);
  const finish = (index: number) => {
    done[index] = true;
    while (prefix < done.length && done[prefix]) prefix++;
    onStarted(prefix);
  };
  let next = prefix;
  const worker = async () => {
    for (let index = next++; index < inputs.length; index = next++) {
      // Spacing creations (shard.create_rate_limit) keeps a large scale-up from bursting EC2.
      if (paceMs > 0 && index > alreadyStarted) await new Promise((resolve) => setTimeout(resolve, paceMs));
      await startOne(client, inputs[index], ids[index]);
      finish(index);
    }
  };
  // Spaced creations go one after the other; unspaced ones a few at a time.
  await Promise.all(Array.from({ length: paceMs > 0 ? 1 : Math.min(START_CONCURRENCY, inputs.length - prefix) }, worker));
  return ids;
}

/** Starts one instance workflow; a retried start of one already started (or finished) is a no-op. */
export async function startOne(client: Client, input: InstanceWorkflowInput, workflowId: string = instanceWorkflowId(input.shard, input.instanceId)): Promise<void> {
  try {
    await client.workflow.start('instanceWorkflow', {
      workflowId,
      taskQueue: shardTaskQueue(input.shard),
      args: [input],
      ...instanceRunMetadata(input),
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
}
