/**
 * Workflows of the GC benchmark's own worker (its workflowsPath): a stand-in for the instance
 * workflow, and one garbage-collection pass.
 */
import { condition, proxyActivities, setHandler, defineSignal } from '@temporalio/workflow';
import type { createGcActivities, GcRequest, Orphan } from '../../activities/gc-activities';
import { collectGarbageOptions } from '../../workflows/gc';

const finish = defineSignal('finish');

/**
 * Stands in for the instance workflow under its id and type (the collector finds owners by both):
 * it runs, doing nothing, until told to finish. The benchmark sets its search attributes at start.
 */
export async function instanceWorkflow(): Promise<void> {
  let finished = false;
  setHandler(finish, () => void (finished = true));
  await condition(() => finished);
}

const { collectGarbage } = proxyActivities<ReturnType<typeof createGcActivities>>(collectGarbageOptions);

/** One pass of the collector, with the activity options gcWorkflow uses. */
export async function gcPassWorkflow(request: GcRequest): Promise<Orphan[]> {
  return collectGarbage(request);
}
