import { WorkflowNotFoundError, type Client, type WorkflowExecutionDescription, type WorkflowExecutionStatusName } from '@temporalio/client';
import { instanceWorkflowId } from '../../common/names';
import { runningInShard, SA } from '../../common/search-attributes';

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

/** Visibility's largest page (the dev server and Temporal's frontend both cap ListWorkflowExecutions at 1000). */
export const OWNERS_PAGE_SIZE = 1000;

/**
 * The shard's running instance workflows as visibility lists them: nstance instance id → the EC2
 * instance its workflow has recorded (NstanceInstanceId), or undefined until it has recorded one.
 * One paginated list for the whole shard. Visibility lags the executions by a moment in both
 * directions, so an answer here is a hint: absence is not proof that nothing owns an instance.
 * `onPage` is told how many pages it has read and how many owners they held, after each page.
 */
export async function runningInstanceOwners(
  client: Client,
  shard: string,
  onPage: (pages: number, owners: number) => void = () => undefined,
  pageSize = OWNERS_PAGE_SIZE,
): Promise<Map<string, string | undefined>> {
  const prefix = instanceWorkflowId(shard, '');
  const owners = new Map<string, string | undefined>();
  let listed = 0;
  for await (const execution of client.workflow.list({ query: runningInShard('instanceWorkflow', shard), pageSize })) {
    listed += 1;
    if (execution.workflowId.startsWith(prefix)) {
      owners.set(execution.workflowId.slice(prefix.length), execution.typedSearchAttributes.get(SA.NstanceInstanceId));
    }
    // The list reads a page, then yields its executions one by one: a full page has just ended.
    if (listed % pageSize === 0) onPage(listed / pageSize, owners.size);
  }
  if (listed % pageSize !== 0 || listed === 0) onPage(Math.ceil(listed / pageSize) || 1, owners.size);
  return owners;
}
