import {
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  setHandler,
  allHandlersFinished,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { groupWorkflowId, instanceWorkflowId } from '../common/names';
import { searchAttributeUpdates } from '../common/search-attributes';
import type { GroupRef, GroupSpec, GroupStatus, InstanceUpdate, InstanceWorkflowInput, Member } from '../common/types';
import { configActivities, temporalActivities } from './activity-options';
import { countMembers, creationBackoffMs, decideReconcile, newInstanceId } from './decisions/reconcile';
import { groupStatusQuery, instanceUpdateSignal, reconcileSignal, terminateSignal } from './definitions';

export interface GroupState {
  members: Record<string, Member>;
  nextSeq: number;
  spec?: GroupSpec;
  /** The group was removed from config: drain it to zero, then finish. */
  removed: boolean;
  failures: number;
  backoffUntil?: number;
  lastError?: string;
}

export interface GroupWorkflowInput extends GroupRef {
  /** Carried across continue-as-new. */
  state?: GroupState;
}

const DEFAULT_INTERVAL_MS = 60_000;

/**
 * Keeps one group at its size, for ever. Instance workflows are started
 * independently (not as children) and report transitions back by signal;
 * this workflow only decides and records.
 */
export async function groupWorkflow(input: GroupWorkflowInput): Promise<void> {
  const ref: GroupRef = { shard: input.shard, tenant: input.tenant, group: input.group };
  const state: GroupState = input.state ?? { members: {}, nextSeq: 1, removed: false, failures: 0 };
  let wake = false;
  let reloadRequested = true;

  setHandler(groupStatusQuery, () => statusOf(ref, state));
  setHandler(reconcileSignal, () => {
    reloadRequested = true;
    wake = true;
  });
  setHandler(instanceUpdateSignal, (update) => {
    applyUpdate(state, update);
    wake = true;
  });

  upsertSearchAttributes(searchAttributeUpdates({ NstanceShard: ref.shard, NstanceGroup: `${ref.tenant}/${ref.group}` }));

  for (;;) {
    if (reloadRequested || !state.spec) {
      reloadRequested = false;
      await reloadSpec(ref, state);
    }
    await reconcileOnce(ref, state);

    if (state.removed && Object.keys(state.members).length === 0) {
      log.info('group removed from config and empty: finishing', { ...ref });
      return;
    }

    wake = false;
    const interval = state.spec?.reconcileIntervalMs ?? DEFAULT_INTERVAL_MS;
    const untilBackoff = state.backoffUntil !== undefined ? Math.max(1, state.backoffUntil - Date.now()) : interval;
    const timedOut = !(await condition(() => wake, Math.min(interval, untilBackoff)));
    // The interval wake re-reads config too, so edits made without a signal still land.
    if (timedOut) reloadRequested = true;

    if (workflowInfo().continueAsNewSuggested) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof groupWorkflow>({ ...ref, state });
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

async function reconcileOnce(ref: GroupRef, state: GroupState): Promise<void> {
  const spec = state.spec;
  const desired = state.removed || !spec ? 0 : spec.size;
  const decision = decideReconcile({
    desired,
    members: Object.values(state.members),
    now: Date.now(),
    backoffUntil: state.backoffUntil,
  });

  for (const instanceId of decision.terminate) {
    const member = state.members[instanceId];
    member.leaving = true;
    const delivered = await signalInstance(ref, instanceId, state.removed ? 'group-removed' : 'scale-down');
    if (!delivered) delete state.members[instanceId];
  }

  if (decision.create > 0 && spec) {
    const inputs: InstanceWorkflowInput[] = [];
    for (let i = 0; i < decision.create; i++) {
      const instanceId = newInstanceId(spec.launch.kind, Math.random);
      state.members[instanceId] = {
        instanceId,
        phase: 'provisioning',
        seq: state.nextSeq++,
        createdAt: new Date(Date.now()).toISOString(),
      };
      inputs.push({
        ...ref,
        clusterId: spec.clusterId,
        instanceId,
        groupWorkflowId: groupWorkflowId(ref.shard, ref.tenant, ref.group),
        launch: spec.launch,
      });
    }
    await temporalActivities.startInstanceWorkflows(inputs, spec.createRateLimitMs);
  }
}

/** False when the instance workflow has already closed (its instance is gone). */
async function signalInstance(ref: GroupRef, instanceId: string, reason: string): Promise<boolean> {
  try {
    await getExternalWorkflowHandle(instanceWorkflowId(ref.shard, instanceId)).signal(terminateSignal, {
      reason,
      actor: `group ${ref.tenant}/${ref.group}`,
    });
    return true;
  } catch (err) {
    if (isCancellation(err)) throw err;
    log.warn('instance workflow not running; forgetting it', { instanceId, error: errorMessage(err) });
    return false;
  }
}

function applyUpdate(state: GroupState, update: InstanceUpdate): void {
  const known = state.members[update.instanceId];
  if (update.phase === 'terminated' || update.phase === 'failed') {
    delete state.members[update.instanceId];
    if (update.phase === 'failed' && !known?.leaving) {
      state.failures++;
      state.backoffUntil = Date.now() + creationBackoffMs(state.failures);
      state.lastError = `instance ${update.instanceId}: ${update.error ?? 'failed'}`;
    }
    return;
  }
  if (update.phase === 'running' && known?.phase === 'provisioning') {
    state.failures = 0;
    state.backoffUntil = undefined;
    if (state.lastError?.startsWith('instance ')) state.lastError = undefined;
  }
  state.members[update.instanceId] = {
    ...(known ?? { seq: state.nextSeq++, createdAt: new Date(Date.now()).toISOString() }),
    ...update,
    leaving: known?.leaving,
  };
}

function statusOf(ref: GroupRef, state: GroupState): GroupStatus {
  const members = Object.values(state.members).sort((a, b) => a.seq - b.seq);
  return {
    ...ref,
    desired: state.removed || !state.spec ? 0 : state.spec.size,
    ...countMembers(members),
    members,
    configured: state.spec !== undefined && !state.removed,
    lastError: state.lastError,
    backoffUntil: state.backoffUntil !== undefined && state.backoffUntil > Date.now() ? new Date(state.backoffUntil).toISOString() : undefined,
  };
}

function errorMessage(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    return cause instanceof Error && cause.message && cause.message !== err.message ? `${err.message}: ${cause.message}` : err.message;
  }
  return String(err);
}
