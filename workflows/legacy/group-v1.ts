import {
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { groupWorkflowId, instanceWorkflowId } from '../../common/names';
import { searchAttributeUpdates } from '../../common/search-attributes';
import type { GroupRef, InstanceWorkflowInput } from '../../common/types';
import { configActivities, ec2Activities, loadBalancerActivities, temporalActivities } from './activity-options-v1';
import { chooseImages, staleImages } from '../decisions/images';
import { decideReconcile, newInstanceId, type Removal } from './reconcile-v1';
import { groupStatusQuery, instanceCommandSignal, instanceUpdateSignal, reconcileSignal, terminateSignal } from '../definitions';
import { applyUpdate, currentDetails, desiredSize, errorMessage, forget, initialGroupState, statusOf, type GroupState } from './group-state-v1';


export interface LegacyGroupWorkflowInput extends GroupRef {
  /** Carried across continue-as-new. */
  state?: GroupState;
}

const DEFAULT_INTERVAL_MS = 60_000;
/** Describe may not show an instance right after launch: only this long after launch is "missing" evidence. */
const MISSING_GRACE_MS = 5 * 60_000;

/**
 * The group workflow as it was before fleet scale (2026-11-25), frozen: runs started on
 * it replay and keep running here (see FLEET_SCALE_PATCH in ../group.ts) until their next
 * continue-as-new, which starts the current code with the state carried from here.
 * Do not change what this code commands; delete it (and deprecate the patch) once no
 * group run started before the patch remains.
 */
export async function legacyGroupWorkflow(input: LegacyGroupWorkflowInput): Promise<void> {
  const ref: GroupRef = { shard: input.shard, tenant: input.tenant, group: input.group };
  const state: GroupState = { ...initialGroupState(), ...input.state };
  let wake = false;
  let reloadRequested = true;
  let observeRequested = true;

  setHandler(groupStatusQuery, (page) => statusOf(ref, state, Date.now(), page));
  setHandler(reconcileSignal, () => {
    reloadRequested = true;
    wake = true;
  });
  setHandler(instanceUpdateSignal, (update) => {
    applyUpdate(state, update, Date.now());
    wake = true;
  });
  setHandler(instanceCommandSignal, async (command) => {
    const member = state.members[command.instanceId];
    if (!member || member.leaving) return;
    if (command.action === 'replace') member.replaceRequested = true;
    else await remove(ref, state, { instanceId: command.instanceId, reason: 'drain-requested', drain: true }, `drain requested by ${command.actor}`);
    wake = true;
  });

  upsertSearchAttributes(searchAttributeUpdates({ NstanceShard: ref.shard, NstanceGroup: `${ref.tenant}/${ref.group}` }));

  // The periodic checks (config reload, EC2 and NLB observation) fall due by the clock,
  // however the loop was woken: a steady stream of signals must not starve them.
  let checksDueAt = Date.now();
  // Set by a pass that is waiting on a replacement for an instance with a termination notice.
  let recheckAt: number | undefined;
  for (;;) {
    // Cleared before the work, so a signal that lands while we reconcile wakes the next pass at once.
    wake = false;
    if (Date.now() >= checksDueAt) {
      reloadRequested = true;
      observeRequested = true;
    }
    if (reloadRequested || !state.spec) {
      reloadRequested = false;
      await reloadSpec(ref, state);
    }
    const imageIds = await refreshImages(state);
    if (observeRequested) {
      observeRequested = false;
      await observe(state);
      checksDueAt = Date.now() + (state.spec?.reconcileIntervalMs ?? DEFAULT_INTERVAL_MS);
    }
    recheckAt = await reconcileOnce(ref, state, imageIds);
    setCurrentDetails(currentDetails(statusOf(ref, state, Date.now())));

    if (state.removed && Object.keys(state.members).length === 0) {
      log.info('group removed from config and empty: finishing', { ...ref });
      return;
    }

    // One timer per pass whatever the reason to wake: the periodic checks, the end of a creation backoff,
    // or a noticed instance's last moment to start draining. A backoff already over is no reason to wake:
    // it stays recorded until a launch succeeds, and waking for it would spin the loop.
    const now = Date.now();
    const wakeAt = Math.min(
      checksDueAt,
      state.backoffUntil !== undefined && state.backoffUntil > now ? state.backoffUntil : Infinity,
      recheckAt ?? Infinity,
    );
    await condition(() => wake, Math.max(1, wakeAt - now));

    if (workflowInfo().continueAsNewSuggested) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof legacyGroupWorkflow>({ ...ref, state });
    }
  }
}

async function reloadSpec(ref: GroupRef, state: GroupState): Promise<void> {
  try {
    const result = await configActivities.loadGroupSpec(ref);
    if (result.found) {
      state.spec = result.spec;
      state.removed = false;
    } else {
      state.removed = true;
    }
    if (state.lastError?.startsWith('config:')) state.lastError = undefined;
  } catch (err) {
    if (isCancellation(err)) throw err;
    // Keep the last good spec: a broken config must not tear the group down.
    state.lastError = `config: ${errorMessage(err)}`;
    log.warn('could not load group spec; keeping the last good one', { ...ref, error: state.lastError });
  }
}

/** Image ids for new launches: cached, looked up again every image_refresh_interval. */
async function refreshImages(state: GroupState): Promise<Record<string, string> | undefined> {
  const spec = state.spec;
  if (!spec) return undefined;
  const images = spec.launch.images;
  const stale = staleImages(images, state.images, Date.now(), spec.imageRefreshMs);
  const lookups = stale.length > 0 ? await ec2Activities.lookupImages(Object.fromEntries(stale.map((n) => [n, images[n]])), spec.launch.arch) : {};
  const choice = chooseImages(images, state.images, lookups, Date.now());
  state.images = choice.cache;
  for (const line of choice.degraded) log.warn(line);
  if (choice.problems.length > 0) {
    state.lastError = `images: ${choice.problems.join('; ')}`;
    return undefined;
  }
  if (state.lastError?.startsWith('images:')) state.lastError = undefined;
  return choice.imageIds;
}

/**
 * Marks members EC2 shows stopped or terminated behind our back, forgets leaving
 * members whose instance is gone (their workflow may have died before it could
 * report; garbage collection terminates what such a workflow left running), and
 * repairs NLB membership.
 */
async function observe(state: GroupState): Promise<void> {
  const watched = Object.values(state.members).filter((m) => m.ec2InstanceId && m.phase !== 'provisioning');
  if (watched.length === 0) return;
  const states = await ec2Activities.observeInstances(watched.map((m) => m.ec2InstanceId as string));
  const now = Date.now();
  for (const m of watched) {
    const seen = states[m.ec2InstanceId as string];
    const launched = m.launchedAt ? Date.parse(m.launchedAt) : now;
    const missing = seen === 'missing' && now - launched > MISSING_GRACE_MS;
    if (m.leaving) {
      if (seen === 'terminated' || missing) {
        log.warn('leaving member already gone in EC2: forgetting it', { instanceId: m.instanceId, ec2InstanceId: m.ec2InstanceId, seen });
        forget(state, m.instanceId);
      }
    } else if (['stopping', 'stopped', 'shutting-down', 'terminated'].includes(seen) || missing) {
      m.lost = true;
    }
  }
  const targetGroups = state.spec?.lifecycle.targetGroups ?? [];
  const serving = watched.filter((m) => m.phase === 'in-service' && !m.leaving && !m.lost).map((m) => m.ec2InstanceId as string);
  if (targetGroups.length > 0 && serving.length > 0) {
    const repaired = await loadBalancerActivities.ensureTargets(targetGroups, serving);
    if (repaired.length > 0) log.warn('re-registered targets someone removed', { repaired });
  }
}

/** One decision, carried out; returns when the group must decide again even if nothing happens (see ReconcileDecision.recheckAt). */
async function reconcileOnce(ref: GroupRef, state: GroupState, imageIds: Record<string, string> | undefined): Promise<number | undefined> {
  const spec = state.spec;
  const decision = decideReconcile({
    desired: desiredSize(state),
    members: Object.values(state.members),
    now: Date.now(),
    backoffUntil: state.backoffUntil,
    nextSeq: state.nextSeq,
    drainTimeoutMs: spec?.lifecycle.drainTimeoutMs,
  });
  for (const f of decision.flag) {
    const member = state.members[f.instanceId];
    if (member) member.replacing = f.replacing;
  }

  for (const removal of decision.remove) await remove(ref, state, removal, `group ${ref.tenant}/${ref.group}`);

  if (decision.create > 0 && spec && imageIds) {
    const inputs: InstanceWorkflowInput[] = [];
    for (let i = 0; i < decision.create; i++) {
      const instanceId = newInstanceId(spec.launch.kind, Math.random);
      state.members[instanceId] = { instanceId, phase: 'provisioning', seq: state.nextSeq++, createdAt: new Date(Date.now()).toISOString() };
      inputs.push({
        ...ref,
        clusterId: spec.clusterId,
        instanceId,
        groupWorkflowId: groupWorkflowId(ref.shard, ref.tenant, ref.group),
        launch: spec.launch,
        imageIds,
        lifecycle: spec.lifecycle,
      });
    }
    await temporalActivities.startInstanceWorkflows(inputs, spec.createRateLimitMs);
  }
  return decision.recheckAt;
}

async function remove(ref: GroupRef, state: GroupState, removal: Removal, actor: string): Promise<void> {
  const member = state.members[removal.instanceId];
  if (!member) return;
  member.leaving = true;
  try {
    await getExternalWorkflowHandle(instanceWorkflowId(ref.shard, removal.instanceId)).signal(terminateSignal, {
      reason: removal.reason,
      actor,
      drain: removal.drain,
    });
  } catch (err) {
    if (isCancellation(err)) throw err;
    // Its workflow already closed: the instance is gone.
    log.warn('instance workflow not running; forgetting it', { instanceId: removal.instanceId, error: errorMessage(err) });
    forget(state, removal.instanceId);
  }
}
