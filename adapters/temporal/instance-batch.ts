/**
 * The group's batched talk to its instance workflows: starting a batch of them (the launch
 * spec sent once for the whole batch, not once per instance) and telling many to go at
 * once, from an activity rather than as one signal command per instance in the group's
 * history. Both heartbeat their progress, and a retried attempt resumes where it left off.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { instanceWorkflowId } from '../../common/names';
import type { InstanceWorkflowInput, LaunchedInstance } from '../../common/types';
import type { Removal } from '../../workflows/decisions/reconcile';
import { terminateSignal } from '../../workflows/definitions';
import { startInstanceWorkflows } from './start-instances';

export interface InstanceBatch {
  /** What every instance workflow of the batch is started with, but its id. */
  common: Omit<InstanceWorkflowInput, 'instanceId' | 'resume'>;
  instanceIds: string[];
  /** shard.create_rate_limit: the spacing between two starts (two launches, when the batch launches). */
  paceMs: number;
  /** Launch the batch's instances here, then start their workflows with the instance (group runs from BATCH_LAUNCH_PATCH on). */
  launchFirst?: boolean;
  /** An earlier batch of these instances failed, and may have launched some: look for each by tag before launching. */
  findExisting?: boolean;
}

export interface StartedBatch {
  /** Every id of the batch whose workflow runs or ran (a launch that failed fast has already told its group). */
  started: string[];
  /** The instances the batch launched and started `launchReported`: their workflows do not report them running. */
  launched?: Record<string, LaunchReport>;
}

/** What a group learns of an instance its batch launched. */
export type LaunchReport = Pick<LaunchedInstance, 'ec2InstanceId' | 'privateIp' | 'launchedAt' | 'instanceType'>;

export async function startInstanceBatch(client: Client, batch: InstanceBatch, onProgress: (count: number) => void, resumeAt = 0): Promise<StartedBatch> {
  const inputs: InstanceWorkflowInput[] = batch.instanceIds.map((instanceId) => ({ ...batch.common, instanceId }));
  const ids = await startInstanceWorkflows(client, inputs, batch.paceMs, (count) => onProgress(count), resumeAt);
  const prefix = instanceWorkflowId(batch.common.shard, '');
  return { started: ids.map((id) => id.slice(prefix.length)) };
}

export interface RemovalBatch {
  shard: string;
  actor: string;
  removals: Removal[];
}

export interface DeliveredRemovals {
  /** Their workflows have the terminate signal. */
  signalled: string[];
  /** No such workflow runs (it closed, or never started): nothing to tell. */
  notRunning: string[];
}

/** Signals in flight at once: enough to deliver thousands in seconds, few enough not to swamp the frontend. */
const SIGNAL_CONCURRENCY = 16;

/** A retried attempt signals the whole batch again: a second terminate signal changes nothing for its workflow. */
export async function signalInstances(client: Client, batch: RemovalBatch, onProgress: (done: number) => void): Promise<DeliveredRemovals> {
  const out: DeliveredRemovals = { signalled: [], notRunning: [] };
  const queue = [...batch.removals];
  const worker = async () => {
    for (let r = queue.shift(); r; r = queue.shift()) {
      try {
        await client.workflow.getHandle(instanceWorkflowId(batch.shard, r.instanceId)).signal(terminateSignal, { reason: r.reason, actor: batch.actor, drain: r.drain, ...(r.detail ? { detail: r.detail } : {}) });
        out.signalled.push(r.instanceId);
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
        out.notRunning.push(r.instanceId);
      }
      onProgress(out.signalled.length + out.notRunning.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(SIGNAL_CONCURRENCY, queue.length) }, worker));
  return out;
}
