/**
 * One reconcile decision, carried out in batches: at most one start activity and one
 * removal activity per pass, whatever the group's size, so a pass's history is the same
 * length at 3 members and at 5,000.
 */
import { patched } from '@temporalio/workflow';
import { groupWorkflowId } from '../common/names';
import type { GroupRef } from '../common/types';
import type { InstanceBatch } from '../adapters/temporal/instance-batch';
import { groupBatchActivities } from './activity-options';
import { resolveBudget } from './decisions/budget';
import { describeDrift, driftedFields, driftOf, pruneVersions, versionFor, type DriftView } from './decisions/drift';
import { decideReconcile, newInstanceId, type Removal } from './decisions/reconcile';
import { applyLaunched, desiredSize, forget, type GroupState } from './group-state';
import { runStep, stepDue } from './group-steps';
import { queueRecord } from './group-records';
import { BackgroundStep } from './group-background';

/** Instance workflows started per pass (and per start activity): the launch spec is sent once for all of them. */
export const CREATE_BATCH = 100;
/**
 * The same from LAUNCH_BATCH_PATCH on. One start batch runs per pass and launches 20 at a time, so a batch of 100
 * left EC2 idle between batches: a 500 scale-up took 45 s where 20 launches in flight take 11 s. A batch of 500
 * still carries one spec, and its answer (what it launched) stays near 100 kB.
 */
export const LAUNCH_BATCH = 500;
export const LAUNCH_BATCH_PATCH = '8-launch-batch-500';
/** Removals delivered per pass. */
export const REMOVE_BATCH = 1000;

/** Drift rotation changes what a pass decides (and so its commands): runs recorded before it replay without. */
export const DRIFT_PATCH = '10-drift-rotation';
/** A replacement takes over from one member only, across passes (Member.tookOver): runs recorded before it replay without. */
export const TAKEOVER_ONCE_PATCH = '8-takeover-once';
/** Start batches launch their instances before starting the workflows: runs recorded before it leave each launch to its instance. */
export const BATCH_LAUNCH_PATCH = '8-batch-launch';

/**
 * From BACKGROUND_START_PATCH on, a start batch runs beside the passes. A batch of 500 takes up to about 250 s when
 * EC2's RunInstances bucket is empty (2 per second), and a pass that awaited it held removals and health
 * replacements back that long.
 */
export const BACKGROUND_START_PATCH = '8-background-start';

/** The start batch running beside the passes: one at a time. */
export class StartLane {
  readonly step = new BackgroundStep();
  /** Members of the batch in flight: a removal decided for one waits until its start is known. */
  inFlight = new Set<string>();

  /** `onDone` wakes the group: what the batch started (or failed to) is worth a pass. */
  constructor(private readonly onDone: () => void) {}

  start(ref: GroupRef, state: GroupState, batch: InstanceBatch): void {
    this.inFlight = new Set(batch.instanceIds);
    this.step.start(
      () => runStartBatch(ref, state, batch),
      () => {
        this.inFlight = new Set();
        this.onDone();
      },
    );
  }
}

export interface PassOutcome {
  /** See ReconcileDecision.recheckAt. */
  recheckAt?: number;
  /** More to create or deliver than one pass does: decide again at once. */
  moreWork: boolean;
}

function startBatchSize(): number {
  return patched(LAUNCH_BATCH_PATCH) ? LAUNCH_BATCH : CREATE_BATCH;
}

/** A removal to deliver with the next batch (once per member). */
export function queueRemoval(state: GroupState, removal: Removal): void {
  if (!state.pendingRemovals.some((r) => r.instanceId === removal.instanceId)) state.pendingRemovals.push(removal);
}

/** `lane`: start batches run beside the passes (BACKGROUND_START_PATCH); without it, the pass awaits its batch. */
export async function reconcileOnce(ref: GroupRef, state: GroupState, imageIds: Record<string, string> | undefined, lane?: StartLane): Promise<PassOutcome> {
  const spec = state.spec;
  const desired = desiredSize(state);
  const drift = patched(DRIFT_PATCH) ? trackDrift(state, imageIds) : undefined;
  const batchSize = startBatchSize();
  const decision = decideReconcile({
    desired,
    members: Object.values(state.members),
    now: Date.now(),
    backoffUntil: state.backoffUntil,
    nextSeq: state.nextSeq,
    drainTimeoutMs: spec?.lifecycle.drainTimeoutMs,
    budget: resolveBudget(desired, spec?.maxSurge, spec?.maxUnavailable),
    // Members not yet started hold their slots; nothing new is decided for the batch they wait in.
    createLimit: Math.max(0, batchSize - state.unstarted.length),
    drifted: drift && new Set(drift.drifted.keys()),
    takeOverOnce: patched(TAKEOVER_ONCE_PATCH),
  });
  for (const f of decision.flag) {
    const member = state.members[f.instanceId];
    if (member) member.replacing = f.replacing;
  }
  for (const id of decision.unflag) {
    const member = state.members[id];
    if (member) member.replacing = undefined;
  }
  for (const id of decision.tookOver) {
    const member = state.members[id];
    if (member) member.tookOver = true;
  }
  for (const removal of decision.remove) {
    const fields = removal.reason === 'drift' ? drift?.drifted.get(removal.instanceId) : undefined;
    queueRemoval(state, fields ? { ...removal, detail: describeDrift(fields) } : removal);
  }
  await deliverRemovals(ref, state, lane?.inFlight);

  const canStart = spec !== undefined && imageIds !== undefined;
  if (decision.create > 0 && spec && canStart) {
    for (let i = 0; i < decision.create; i++) {
      const instanceId = newInstanceId(spec.launch.kind, Math.random);
      state.members[instanceId] = { instanceId, phase: 'provisioning', seq: state.nextSeq++ };
      state.unstarted.push(instanceId);
      queueRecord(ref, state, state.members[instanceId], Date.now());
    }
  }
  if (!lane) {
    const batch = nextStartBatch(ref, state, imageIds);
    if (batch) await runStartBatch(ref, state, batch);
  } else if (!lane.step.busy && stepDue(state.steps, 'start', Date.now())) {
    // Not while the step backs off: a batch that returned at once would wake the group at once, pass after pass.
    const batch = nextStartBatch(ref, state, imageIds);
    if (batch) lane.start(ref, state, batch);
  }
  // Only work that the next pass can do now is a reason to skip the wait (a step backing off, no image, or a
  // batch still running, which wakes the group when it ends, is not).
  const now = Date.now();
  const starting = lane?.step.busy ?? false;
  const moreToStart = canStart && !starting && (decision.moreToCreate || state.unstarted.length > 0) && stepDue(state.steps, 'start', now);
  const moreToRemove = state.pendingRemovals.length + state.strays.length > 0 && stepDue(state.steps, 'remove', now);
  return { recheckAt: decision.recheckAt, moreWork: moreToStart || moreToRemove };
}

/**
 * Which members were launched from something other than what the group launches now. Members with no
 * recorded version (launched before drift rotation, or rebuilt after a lost state) are taken to be
 * current: nothing tells otherwise, and replacing a whole fleet on an upgrade would be worse. Members not
 * started yet are launched from the current spec whatever they were stamped with. Undefined while the
 * spec has no fingerprint (carried from before) or no image ids are known.
 */
function trackDrift(state: GroupState, imageIds: Record<string, string> | undefined): DriftView | undefined {
  const fingerprint = state.spec?.fingerprint;
  if (!fingerprint || !imageIds) return undefined;
  const current = { fingerprint, images: imageIds };
  const members = Object.values(state.members);
  const unstarted = new Set(state.unstarted);
  const rotateOnImageChange = state.spec?.rotateOnImageChange ?? false;
  const view = driftOf(members, state.launches, current, rotateOnImageChange);
  if (view.unversioned.length > 0) {
    const { table, id } = versionFor(state.launches, current);
    state.launches = table;
    for (const instanceId of view.unversioned) state.members[instanceId].launch = id;
  }
  for (const instanceId of unstarted) view.drifted.delete(instanceId);
  state.launches = pruneVersions(state.launches, members);
  state.driftByVersion = Object.fromEntries(state.launches.map((v) => [v.id, driftedFields(v, current, rotateOnImageChange)]));
  return view;
}

/** Records, on the members of a start batch, the launch version the batch is started with. */
function stampLaunch(state: GroupState, instanceIds: string[], imageIds: Record<string, string>): void {
  const fingerprint = state.spec?.fingerprint;
  if (!fingerprint) return;
  const { table, id } = versionFor(state.launches, { fingerprint, images: imageIds });
  state.launches = table;
  for (const instanceId of instanceIds) {
    const member = state.members[instanceId];
    if (member) member.launch = id;
  }
}

/**
 * Tells the instance workflows to go (and strays, instance workflows reporting to a group that does not count
 * them). A member is marked leaving once its workflow has the signal; one whose workflow no longer runs is
 * forgotten (its instance is gone, or garbage collection terminates it). Undelivered ones wait for the next pass.
 */
async function deliverRemovals(ref: GroupRef, state: GroupState, starting: ReadonlySet<string> = new Set()): Promise<void> {
  const deliverable = state.pendingRemovals.filter((r) => !starting.has(r.instanceId));
  for (const r of deliverable) if (state.unstarted.includes(r.instanceId)) state.unstarted = state.unstarted.filter((id) => id !== r.instanceId);
  const strays = state.strays.filter((id) => !state.members[id] && !starting.has(id)).map((instanceId): Removal => ({ instanceId, reason: 'not-a-member', drain: true }));
  const batch = [...deliverable, ...strays].slice(0, REMOVE_BATCH);
  if (batch.length === 0) return;
  const delivered = await runStep(state.steps, 'remove', () => groupBatchActivities.signalInstances({ shard: ref.shard, actor: `group ${ref.tenant}/${ref.group}`, removals: batch }), { ...ref });
  if (!delivered) return;
  const done = new Set([...delivered.signalled, ...delivered.notRunning]);
  for (const id of delivered.signalled) {
    const member = state.members[id];
    if (member) {
      member.leaving = true;
      queueRecord(ref, state, member, Date.now());
    }
  }
  for (const id of delivered.notRunning) if (state.members[id]) forget(state, id);
  state.pendingRemovals = state.pendingRemovals.filter((r) => !done.has(r.instanceId));
  state.strays = state.strays.filter((id) => !done.has(id));
}

/** The next batch of members not started yet (the same ids again after a failure: starts are idempotent), stamped with its launch version. */
function nextStartBatch(ref: GroupRef, state: GroupState, imageIds: Record<string, string> | undefined): InstanceBatch | undefined {
  const spec = state.spec;
  if (state.unstarted.length === 0 || !spec || !imageIds) return undefined;
  const batch: InstanceBatch = {
    common: {
      ...ref,
      clusterId: spec.clusterId,
      groupWorkflowId: groupWorkflowId(ref.shard, ref.tenant, ref.group),
      launch: spec.launch,
      imageIds,
      lifecycle: spec.lifecycle,
    },
    instanceIds: state.unstarted.slice(0, startBatchSize()),
    paceMs: spec.createRateLimitMs,
  };
  if (patched(BATCH_LAUNCH_PATCH)) {
    batch.launchFirst = true;
    // A batch that failed may have launched some of its instances: the next one looks for them first.
    if (state.steps.start) batch.findExisting = true;
  }
  if (patched(DRIFT_PATCH)) stampLaunch(state, batch.instanceIds, imageIds);
  return batch;
}

async function runStartBatch(ref: GroupRef, state: GroupState, batch: InstanceBatch): Promise<void> {
  const started = await runStep(state.steps, 'start', () => groupBatchActivities.startInstanceBatch(batch), { ...ref });
  if (!started) return;
  const done = new Set(started.started);
  state.unstarted = state.unstarted.filter((id) => !done.has(id));
  if (started.launched) applyLaunched(state, started.launched, Date.now());
}
