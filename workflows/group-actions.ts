/**
 * One reconcile decision, carried out in batches: at most one start activity and one
 * removal activity per pass, whatever the group's size, so a pass's history is the same
 * length at 3 members and at 5,000.
 */
import { groupWorkflowId } from '../common/names';
import type { GroupRef } from '../common/types';
import type { InstanceBatch } from '../adapters/temporal/instance-batch';
import { groupBatchActivities } from './activity-options';
import { resolveBudget } from './decisions/budget';
import { decideReconcile, newInstanceId, type Removal } from './decisions/reconcile';
import { desiredSize, forget, type GroupState } from './group-state';
import { runStep, stepDue } from './group-steps';

/** Instance workflows started per pass (and per start activity): the launch spec is sent once for all of them. */
export const CREATE_BATCH = 100;
/** Removals delivered per pass. */
export const REMOVE_BATCH = 1000;

export interface PassOutcome {
  /** See ReconcileDecision.recheckAt. */
  recheckAt?: number;
  /** More to create or deliver than one pass does: decide again at once. */
  moreWork: boolean;
}

/** A removal to deliver with the next batch (once per member). */
export function queueRemoval(state: GroupState, removal: Removal): void {
  if (!state.pendingRemovals.some((r) => r.instanceId === removal.instanceId)) state.pendingRemovals.push(removal);
}

export async function reconcileOnce(ref: GroupRef, state: GroupState, imageIds: Record<string, string> | undefined): Promise<PassOutcome> {
  const spec = state.spec;
  const desired = desiredSize(state);
  const decision = decideReconcile({
    desired,
    members: Object.values(state.members),
    now: Date.now(),
    backoffUntil: state.backoffUntil,
    nextSeq: state.nextSeq,
    drainTimeoutMs: spec?.lifecycle.drainTimeoutMs,
    budget: resolveBudget(desired, spec?.maxSurge, spec?.maxUnavailable),
    // Members not yet started hold their slots; nothing new is decided for the batch they wait in.
    createLimit: Math.max(0, CREATE_BATCH - state.unstarted.length),
  });
  for (const f of decision.flag) {
    const member = state.members[f.instanceId];
    if (member) member.replacing = f.replacing;
  }
  for (const id of decision.unflag) {
    const member = state.members[id];
    if (member) member.replacing = undefined;
  }
  for (const removal of decision.remove) queueRemoval(state, removal);
  await deliverRemovals(ref, state);

  const canStart = spec !== undefined && imageIds !== undefined;
  if (decision.create > 0 && spec && canStart) {
    for (let i = 0; i < decision.create; i++) {
      const instanceId = newInstanceId(spec.launch.kind, Math.random);
      state.members[instanceId] = { instanceId, phase: 'provisioning', seq: state.nextSeq++ };
      state.unstarted.push(instanceId);
    }
  }
  await startUnstarted(ref, state, imageIds);
  // Only work that the next pass can do now is a reason to skip the wait (a step backing off, or no image, is not).
  const now = Date.now();
  const moreToStart = canStart && (decision.moreToCreate || state.unstarted.length > 0) && stepDue(state.steps, 'start', now);
  const moreToRemove = state.pendingRemovals.length + state.strays.length > 0 && stepDue(state.steps, 'remove', now);
  return { recheckAt: decision.recheckAt, moreWork: moreToStart || moreToRemove };
}

/**
 * Tells the instance workflows to go (and strays, instance workflows reporting to a group that does not count
 * them). A member is marked leaving once its workflow has the signal; one whose workflow no longer runs is
 * forgotten (its instance is gone, or garbage collection terminates it). Undelivered ones wait for the next pass.
 */
async function deliverRemovals(ref: GroupRef, state: GroupState): Promise<void> {
  for (const r of state.pendingRemovals) if (state.unstarted.includes(r.instanceId)) state.unstarted = state.unstarted.filter((id) => id !== r.instanceId);
  const strays = state.strays.filter((id) => !state.members[id]).map((instanceId): Removal => ({ instanceId, reason: 'not-a-member', drain: true }));
  const batch = [...state.pendingRemovals, ...strays].slice(0, REMOVE_BATCH);
  if (batch.length === 0) return;
  const delivered = await runStep(state.steps, 'remove', () => groupBatchActivities.signalInstances({ shard: ref.shard, actor: `group ${ref.tenant}/${ref.group}`, removals: batch }), { ...ref });
  if (!delivered) return;
  const done = new Set([...delivered.signalled, ...delivered.notRunning]);
  for (const id of delivered.signalled) {
    const member = state.members[id];
    if (member) member.leaving = true;
  }
  for (const id of delivered.notRunning) if (state.members[id]) forget(state, id);
  state.pendingRemovals = state.pendingRemovals.filter((r) => !done.has(r.instanceId));
  state.strays = state.strays.filter((id) => !done.has(id));
}

/** Starts the members not started yet, one batch per pass; the same ids again after a failure (starts are idempotent). */
async function startUnstarted(ref: GroupRef, state: GroupState, imageIds: Record<string, string> | undefined): Promise<void> {
  const spec = state.spec;
  if (state.unstarted.length === 0 || !spec || !imageIds) return;
  const batch: InstanceBatch = {
    common: {
      ...ref,
      clusterId: spec.clusterId,
      groupWorkflowId: groupWorkflowId(ref.shard, ref.tenant, ref.group),
      launch: spec.launch,
      imageIds,
      lifecycle: spec.lifecycle,
    },
    instanceIds: state.unstarted.slice(0, CREATE_BATCH),
    paceMs: spec.createRateLimitMs,
  };
  const started = await runStep(state.steps, 'start', () => groupBatchActivities.startInstanceBatch(batch), { ...ref });
  if (!started) return;
  const done = new Set(started.started);
  state.unstarted = state.unstarted.filter((id) => !done.has(id));
}
