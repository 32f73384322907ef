/**
 * The group's start batch launches its instances itself, a few at a time within the worker's EC2
 * token buckets, before it starts their workflows: a scale-up of thousands is then paced by EC2, not
 * by two workflow tasks and two activities per instance queued behind everything else the worker runs.
 * What the batch cannot launch (the first failure stops it) is left to each instance's own workflow,
 * which retries, falls back and backs off as before; one whose launch may have gone out is looked for
 * by tag first there.
 *
 * Duplicates are kept out as in the instance's own launch: a launch is retried with the same ClientToken
 * (and nonce), which covers the time EC2's Describe does not show a new instance yet, and a retried attempt
 * looks for its instance by tag first. Every attempt of the activity shares its scheduled time, and resumes
 * from the heartbeat of its subnet plan and launches, so each instance keeps its subnet and its token.
 */
import { log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import pLimit from 'p-limit';
import { instanceWorkflowId } from '../common/names';
import type { AuditEntry, InstanceWorkflowInput, LaunchedInstance } from '../common/types';
import { errorMessage } from '../common/failures';
import type { InstanceBatch, LaunchReport } from '../adapters/temporal/instance-batch';
import type { Launcher } from './launcher';

/** Launches in flight at once: the token buckets pace them; this only bounds the sockets. */
export const BATCH_LAUNCH_CONCURRENCY = 20;

/**
 * Workflow starts in flight at once. They run beside the launches, not in their lanes: a lane that
 * waited for its instance's workflow to start before its next launch held EC2's pace to the dev
 * server's (a 500 scale-up took 1.6 s per launch and lane where RunInstances alone took 0.4 s).
 */
export const BATCH_START_CONCURRENCY = 20;

/** What a batch activity heartbeats: its launches so far, then how many workflows it started. */
export interface BatchProgress {
  launched: Record<string, LaunchedInstance>;
  /** The subnet each instance was (or is being) launched in. */
  subnets: Record<string, string>;
  /** Instances left to their own workflows, and whether the batch may have launched them. */
  left: Record<string, { findExisting: boolean }>;
  /** Launched instances whose workflows are started (each right after its launch). */
  startedIds: string[];
}

export interface BatchLaunchContext {
  launcher: Launcher;
  /** The activity's scheduled time: the same on every attempt. */
  issuedAtMs: number;
  /** This is a retried attempt of the activity. */
  retried: boolean;
  resumed?: BatchProgress;
  heartbeat: (progress: BatchProgress) => void;
  /** Starts a launched instance's workflow: at once, so that its agent finds it when it registers. */
  start: (input: InstanceWorkflowInput) => Promise<void>;
  /** The activity's cancellation: a cancelled batch stops, it does not hand its instances on. */
  signal: AbortSignal;
}

/** Waits before the next try: 1 s, then doubling. */
function backoff(attempt: number): Promise<void> {
  return new Promise((r) => setTimeout(r, 1000 * 2 ** (attempt - 1)));
}

export function emptyProgress(): BatchProgress {
  return { launched: {}, subnets: {}, left: {}, startedIds: [] };
}

/** Tries of one launch within the batch, with the same token and nonce (as the activity's own retries would). */
export const BATCH_LAUNCH_TRIES = 5;

export async function launchBatch(batch: InstanceBatch, ctx: BatchLaunchContext): Promise<BatchProgress> {
  const progress = ctx.resumed ?? emptyProgress();
  const started = new Set(progress.startedIds);
  const todo = batch.instanceIds.filter((id) => !started.has(id) && !progress.left[id]);
  const imageIds = batch.common.imageIds ?? {};
  const pool = batch.common.launch;
  // Every subnet is chosen before anything launches, and heartbeated at once (a first heartbeat is not
  // throttled): a retried attempt then launches each instance where the first tried it, with the same token.
  for (const id of todo) progress.subnets[id] ??= await ctx.launcher.selectSubnet(pool.subnetPool, pool.subnetIds, []);
  ctx.heartbeat(progress);
  // A retried attempt (or a batch after a failed one) may have launched any of them: look for each by tag first.
  const mayExist = ctx.retried || batch.findExisting === true;
  let stopped = false;
  const starting = pLimit(BATCH_START_CONCURRENCY);
  const starts: Promise<void>[] = [];
  // Caught where it happens (the launches go on meanwhile), thrown once they are done.
  let startAborted: unknown;
  // Tried as often as a launch; a workflow that still will not start is left to start with its instance.
  const startLaunched = async (input: InstanceWorkflowInput, launched: LaunchedInstance): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      try {
        await ctx.start({ ...input, launched, launchReported: true });
        progress.startedIds.push(input.instanceId);
        break;
      } catch (err) {
        if (ctx.signal.aborted) throw err;
        if (attempt < BATCH_LAUNCH_TRIES) {
          await backoff(attempt);
          continue;
        }
        log.warn('batch could not start a launched instance\'s workflow; it starts with the rest of the batch', { instanceId: input.instanceId, error: errorMessage(err) });
        progress.left[input.instanceId] = { findExisting: false };
        break;
      }
    }
    ctx.heartbeat(progress);
  };
  const launchOne = async (instanceId: string): Promise<void> => {
    if (stopped) {
      progress.left[instanceId] = { findExisting: mayExist };
      return;
    }
    const input: InstanceWorkflowInput = { ...batch.common, instanceId };
    const subnetId = progress.subnets[instanceId] as string;
    const launch = { workflowId: instanceWorkflowId(input.shard, instanceId), issuedAtMs: ctx.issuedAtMs };
    for (let attempt = 1; ; attempt++) {
      try {
        const launched = progress.launched[instanceId] ?? (await ctx.launcher.launch(input, imageIds, subnetId, launch, mayExist || attempt > 1));
        progress.launched[instanceId] = launched;
        starts.push(starting(() => startLaunched(input, launched)).catch((err: unknown) => void (startAborted ??= err)));
        break;
      } catch (err) {
        if (ctx.signal.aborted) throw err;
        // EC2 refused it (no capacity, a full subnet, a bad config): nothing launched; the workflow's own path
        // takes it from here. Anything else may have launched: retried here with the same token, then handed on.
        const refused = err instanceof ApplicationFailure && err.nonRetryable;
        if (!refused && attempt < BATCH_LAUNCH_TRIES) {
          await backoff(attempt);
          continue;
        }
        stopped = true;
        log.warn('batch launch stopped; the rest of the batch launches from its own workflows', { instanceId, subnetId, error: errorMessage(err) });
        progress.left[instanceId] = { findExisting: mayExist || !refused };
        break;
      }
    }
    ctx.heartbeat(progress);
  };
  const queue = [...todo];
  const lanes = batch.paceMs > 0 ? 1 : Math.min(BATCH_LAUNCH_CONCURRENCY, queue.length);
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
        await launchOne(id);
        if (batch.paceMs > 0 && queue.length > 0) await new Promise((r) => setTimeout(r, batch.paceMs));
      }
    }),
  );
  await Promise.all(starts);
  if (startAborted !== undefined) throw startAborted;
  return progress;
}

/** The workflows of what the batch left to them, and whether each looks for an instance first. */
export function leftInputs(batch: InstanceBatch, progress: BatchProgress): InstanceWorkflowInput[] {
  return Object.entries(progress.left).map(([instanceId, left]) => {
    // Launched, but its workflow would not start: it starts now with its instance.
    const launched = progress.launched[instanceId];
    return { ...batch.common, instanceId, ...(launched ? { launched } : left.findExisting ? { findExisting: true } : {}) };
  });
}

/**
 * The batch's own account of what it launched and started (those workflows were started `launchReported`):
 * one audit object for the batch instead of one per instance, and what the group learns of each instance
 * without waiting for a report.
 */
export function launchAccount(batch: InstanceBatch, progress: BatchProgress, at: string, workflowId: string): { audit?: AuditEntry; reports: Record<string, LaunchReport> } {
  const reports: Record<string, LaunchReport> = {};
  const instances: Record<string, Record<string, unknown>> = {};
  for (const id of progress.startedIds) {
    const launched = progress.launched[id];
    if (!launched) continue;
    const type = launched.instanceType ? { instanceType: launched.instanceType } : {};
    reports[id] = { ec2InstanceId: launched.ec2InstanceId, ...(launched.privateIp ? { privateIp: launched.privateIp } : {}), ...(launched.launchedAt ? { launchedAt: launched.launchedAt } : {}), ...type };
    instances[id] = { ec2InstanceId: launched.ec2InstanceId, subnetId: launched.subnetId, imageId: launched.imageId, adopted: launched.adopted, ...type };
  }
  const ids = Object.keys(reports);
  if (ids.length === 0) return { reports };
  const { shard, tenant, group } = batch.common;
  const audit: AuditEntry = {
    shard,
    action: 'instance.create',
    actor: 'nstance',
    at,
    workflowId,
    tenant,
    group,
    instanceIds: ids,
    ec2InstanceIds: ids.map((id) => reports[id].ec2InstanceId),
    details: { instances },
  };
  return { audit, reports };
}
