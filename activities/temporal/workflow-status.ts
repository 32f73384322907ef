import { WorkflowNotFoundError, type Client, type WorkflowExecutionStatusName } from '@temporalio/client';

/**
 * The status of a workflow's latest run, or 'NOT_FOUND' when Temporal has no run
 * under that id (never started, or closed and past retention). Describe reads the
 * execution itself, not visibility, so a workflow just started is RUNNING here at
 * once: callers may treat "not RUNNING" as final for ids that are never reused.
 */
export async function latestRunStatus(client: Client, workflowId: string): Promise<WorkflowExecutionStatusName | 'NOT_FOUND'> {
  try {
    return (await client.workflow.getHandle(workflowId).describe()).status.name;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return 'NOT_FOUND';
    throw err;
  }
}
