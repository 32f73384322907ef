import { WorkflowNotFoundError, type Client, type WorkflowExecutionDescription, type WorkflowExecutionStatusName } from '@temporalio/client';
import { SA } from '../../common/search-attributes';

/** The latest run of a workflow id, or undefined when Temporal has none (never started, or past retention). */
async function describeLatest(client: Client, workflowId: string): Promise<WorkflowExecutionDescription | undefined> {
  try {
    return await client.workflow.getHandle(workflowId).describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw err;
  }
}

/**
 * The status of a workflow's latest run, or 'NOT_FOUND' when Temporal has no run
 * under that id (never started, or closed and past retention). Describe reads the
 * execution itself, not visibility, so a workflow just started is RUNNING here at
 * once: callers may treat "not RUNNING" as final for ids that are never reused.
 */
export async function latestRunStatus(client: Client, workflowId: string): Promise<WorkflowExecutionStatusName | 'NOT_FOUND'> {
  return (await describeLatest(client, workflowId))?.status.name ?? 'NOT_FOUND';
}

export interface InstanceRun {
  status: WorkflowExecutionStatusName | 'NOT_FOUND';
  /** The EC2 instance the instance workflow runs (its NstanceInstanceId), once it has recorded one. */
  ec2InstanceId?: string;
}

/** An instance workflow's latest run and the EC2 instance it runs, read consistently (describe, not visibility). */
export async function latestInstanceRun(client: Client, workflowId: string): Promise<InstanceRun> {
  const description = await describeLatest(client, workflowId);
  if (!description) return { status: 'NOT_FOUND' };
  return { status: description.status.name, ec2InstanceId: description.typedSearchAttributes.get(SA.NstanceInstanceId) };
}
