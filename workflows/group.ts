import {
  allHandlersFinished,
  condition,
  continueAsNew,
  log,
  patched,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { searchAttributeUpdates } from '../common/search-attributes';
import type { GroupRef } from '../common/types';
import { groupConfigActivities, groupEc2Activities } from './activity-options';
import { chooseImages, staleImages } from './decisions/images';
import { groupStatusQuery, instanceCommandSignal, instanceUpdateSignal, reconcileSignal } from './definitions';
import { BACKGROUND_START_PATCH, reconcileOnce, queueRemoval, StartLane } from './group-actions';
import { rebuildMembers } from './group-rebuild';
import { applyUpdate, carryGroupState, desiredSize, forget, restoreGroupState, type CarriedGroupState, type GroupState, type LegacyCarriedGroupState } from './group-state';
import { currentDetails, statusOf, type GroupView } from './group-status';
import { nextStepRetry, runStep, stepError } from './group-steps';
import { legacyGroupWorkflow } from './legacy/group-v1';
import { CARRY_RECORDS_PATCH, flushRecords, queueRecord, RECORDS_PATCH } from './group-records';
import { unpackRecords } from './group-records-carry';
import { BACKGROUND_STEPS_PATCH, BackgroundStep } from './group-background';

export type { GroupState } from './group-state';

export interface GroupWorkflowInput extends GroupRef {
  /** Carried across continue-as-new: packed (this code), or the object form of runs from before fleet scale. */
  state?: CarriedGroupState | LegacyCarriedGroupState;
}

/**
 * Runs started before fleet scale replay (and keep running) the frozen code in
 * workflows/legacy/ until their next continue-as-new, which starts this code.
 */
export const FLEET_SCALE_PATCH = 'group-fleet-scale';
/**
 * Members' reports are applied at once but reconciled at most once per REPORT_COALESCE_MS:
 * a scale-up of thousands sends several reports per instance, and a pass per report made
 * each workflow task cost a pass over every member (and two timer events) per report.
 */
export const COALESCE_REPORTS_PATCH = 'group-coalesce-reports';
const REPORT_COALESCE_MS = 2_000;

const DEFAULT_INTERVAL_MS = 60_000;
/** Describe may not show an instance right after launch: only this long after launch is "missing" evidence. */
const MISSING_GRACE_MS = 5 * 60_000;
const GONE_STATES = ['stopping', 'stopped', 'shutting-down', 'terminated'];

/**
 * Keeps one group at its size, for ever. Instance workflows are started independently
 * (not as children), in batches, and report transitions back by signal; this workflow
 * decides and records. No AWS or Temporal error ends it: a failed step is shown as the
 * group's last error and tried again on a later pass. A run without carried state first
 * rebuilds its members from what exists, and decides nothing until then.
 */
export async function groupWorkflow(input: GroupWorkflowInput): Promise<void> {
  if (!patched(FLEET_SCALE_PATCH)) return legacyGroupWorkflow({ ...input, state: input.state as LegacyCarriedGroupState | undefined });
  const ref: GroupRef = { shard: input.shard, tenant: input.tenant, group: input.group };
  const coalesceReports = patched(COALESCE_REPORTS_PATCH);
  const state = restoreGroupState(input.state);
  if (patched(RECORDS_PATCH)) state.records = {};
  // Records queued by the last run and not yet written: written by this run's first pass.
  const carryRecords = state.records !== undefined && patched(CARRY_RECORDS_PATCH);
  if (carryRecords && input.state && 'records' in input.state) state.records = unpackRecords(ref, input.state.records, state.members);
  const backgroundSteps = patched(BACKGROUND_STEPS_PATCH);
  const observing = new BackgroundStep();
  const recording = new BackgroundStep();
  let wake = false;
  /** Reports applied since the last pass began; they wake a pass no sooner than REPORT_COALESCE_MS after it. */
  let reportsPending = false;
  let passStartedAt = Date.now();
  let reloadRequested = true;
  /** Asked to reload by a signal (config applied, a scale): read what was just written, not the worker's cached copy. */
  let freshRequested = true;
  let observeRequested = true;
  const lane = backgroundSteps && patched(BACKGROUND_START_PATCH) ? new StartLane(() => (wake = true)) : undefined;
  const backgroundIdle = () => Promise.all([observing.idle(), recording.idle(), lane?.step.idle()]);

  // Diagnostics cost a pass over the state (the carried size): only the query pays for them, not every pass.
  const view = (withDiagnostics: boolean): GroupView => ({
    members: Object.values(state.members),
    desired: desiredSize(state),
    configured: state.spec !== undefined && !state.removed,
    lastError: stepError(state.steps) ?? state.lastError,
    backoffUntil: state.backoffUntil,
    launches: state.launches,
    driftOf: (m) => (m.launch === undefined ? undefined : state.driftByVersion?.[m.launch]),
    // A run's verdicts are not carried: until its first pass judges them, members with a launch version are of unknown drift.
    driftJudged: !state.rebuilding && (state.driftByVersion !== undefined || state.launches.length === 0),
    diagnostics: withDiagnostics
      ? { passes: state.passes, historyLength: workflowInfo().historyLength, carriedStateBytes: JSON.stringify(carryGroupState(state, { records: carryRecords })).length, rebuilding: state.rebuilding }
      : undefined,
  });
  const showDetails = () => setCurrentDetails(currentDetails(statusOf(ref, view(false), Date.now(), { limit: 0 }), state.rebuilding));
  setHandler(groupStatusQuery, (page) => statusOf(ref, view(true), Date.now(), page));
  setHandler(reconcileSignal, () => {
    reloadRequested = true;
    freshRequested = true;
    // An explicit request (config applied, a scale) is worth trying now, whatever the config step's backoff.
    if (state.steps.config) state.steps.config.retryAt = 0;
    wake = true;
  });
  setHandler(instanceUpdateSignal, (update) => {
    const member = !state.rebuilding && state.members[update.instanceId] !== undefined;
    applyUpdate(state, update, Date.now());
    if (member) queueRecord(ref, state, update, Date.now());
    if (coalesceReports) reportsPending = true;
    else wake = true;
  });
  setHandler(instanceCommandSignal, (command) => {
    const member = state.members[command.instanceId];
    if (!member || member.leaving) return;
    if (command.action === 'replace') member.replaceRequested = true;
    else queueRemoval(state, { instanceId: command.instanceId, reason: 'drain-requested', drain: true });
    wake = true;
  });

  upsertSearchAttributes(searchAttributeUpdates({ NstanceShard: ref.shard, NstanceGroup: `${ref.tenant}/${ref.group}` }));
  if (state.rebuilding) await rebuildMembers(ref, state, async () => void (await reloadSpec(ref, state, true)), showDetails);

  // The periodic checks (config reload, EC2 and NLB observation) fall due by the clock,
  // however the loop was woken: a steady stream of signals must not starve them.
  let checksDueAt = Date.now();
  for (;;) {
    // Cleared before the work, so a signal that lands while we reconcile wakes the next pass at once.
    wake = false;
    reportsPending = false;
    passStartedAt = Date.now();
    state.passes++;
    if (Date.now() >= checksDueAt) {
      reloadRequested = true;
      observeRequested = true;
    }
    if (reloadRequested || !state.spec) {
      const fresh: boolean = freshRequested;
      // Cleared first, so a signal that lands meanwhile asks again; a failed read is asked again too (a fresh
      // one stays fresh) and is retried once its step's backoff is over.
      reloadRequested = false;
      freshRequested = false;
      if (!(await reloadSpec(ref, state, fresh))) {
        reloadRequested = true;
        freshRequested ||= fresh;
      }
    }
    const imageIds = await refreshImages(state);
    if (observeRequested) {
      observeRequested = false;
      // What it finds (members lost, or gone while leaving) is worth a pass of its own.
      if (!backgroundSteps) await observe(state);
      else observing.start(() => observe(state), () => (wake = true));
      checksDueAt = Date.now() + (state.spec?.reconcileIntervalMs ?? DEFAULT_INTERVAL_MS);
    }
    const outcome = await reconcileOnce(ref, state, imageIds, lane);
    if (!backgroundSteps) await flushRecords(ref, state);
    // Records queued while it wrote are written by a pass of their own (not while the step backs off).
    else recording.start(() => flushRecords(ref, state), () => (wake ||= Object.keys(state.records ?? {}).length > 0 && !state.steps.records));
    showDetails();

    if (state.removed && Object.keys(state.members).length === 0 && state.strays.length === 0) {
      if (backgroundSteps) {
        await backgroundIdle();
        await flushRecords(ref, state);
      }
      log.info('group removed from config and empty: finishing', { ...ref });
      return;
    }

    // One timer per pass whatever the reason to wake: the periodic checks, the end of a creation or step
    // backoff, or a noticed instance's last moment to start draining. A backoff already over is no reason
    // to wake: it stays recorded until a launch succeeds, and waking for it would spin the loop.
    const now = Date.now();
    const future = (t: number | undefined) => (t !== undefined && t > now ? t : Infinity);
    const wakeAt = Math.min(checksDueAt, future(state.backoffUntil), future(outcome.recheckAt), future(nextStepRetry(state.steps)));
    if (outcome.moreWork) wake = true;
    await condition(() => wake || reportsPending, Math.max(1, wakeAt - now));
    if (!wake && reportsPending) {
      // Woken by a report only: wait out the rest of the coalescing window (or the next due wake, or a signal that cannot wait).
      const left = Math.min(passStartedAt + REPORT_COALESCE_MS, wakeAt) - Date.now();
      if (left > 0) await condition(() => wake, left);
    }

    if (workflowInfo().continueAsNewSuggested) {
      await backgroundIdle();
      await condition(allHandlersFinished);
      const carried = carryGroupState(state, { records: carryRecords });
      log.info('continuing as new', { ...ref, members: Object.keys(state.members).length, records: carried.records?.length ?? 0, carriedStateBytes: JSON.stringify(carried).length });
      await continueAsNew<typeof groupWorkflow>({ ...ref, state: carried });
    }
  }
}

/** Whether the spec was read (false: the step failed or is backing off; the last good spec is kept). */
async function reloadSpec(ref: GroupRef, state: GroupState, fresh: boolean): Promise<boolean> {
  // On failure the last good spec is kept: a broken config must not tear the group down.
  const result = await runStep(state.steps, 'config', () => groupConfigActivities.loadGroupSpec(ref, { fresh }), { ...ref });
  if (!result) return false;
  if (result.found) {
    state.spec = result.spec;
    state.removed = false;
  } else {
    state.removed = true;
  }
  return true;
}

/** Image ids for new launches: cached, looked up again every image_refresh_interval. */
async function refreshImages(state: GroupState): Promise<Record<string, string> | undefined> {
  const spec = state.spec;
  if (!spec) return undefined;
  const images = spec.launch.images;
  const stale = staleImages(images, state.images, Date.now(), spec.imageRefreshMs);
  const lookups =
    stale.length > 0 ? ((await runStep(state.steps, 'images', () => groupEc2Activities.lookupImages(Object.fromEntries(stale.map((n) => [n, images[n]])), spec.launch.arch))) ?? {}) : {};
  const choice = chooseImages(images, state.images, lookups, Date.now());
  state.images = choice.cache;
  for (const line of choice.degraded) log.warn(line);
  if (choice.problems.length > 0) {
    state.lastError = `images: ${choice.problems.join('; ')}`;
    return undefined;
  }
  // Launching on the last good id or the fallback works, but is worth showing until a look-up succeeds again.
  if (choice.degraded.length > 0) state.lastError = `images: ${choice.degraded.join('; ')}`;
  else if (state.lastError?.startsWith('images:')) state.lastError = undefined;
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
  const states = await runStep(state.steps, 'observe', () => groupEc2Activities.observeInstances(watched.map((m) => m.ec2InstanceId as string)));
  if (states) {
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
      } else if (GONE_STATES.includes(seen) || missing) {
        m.lost = true;
      }
    }
  }
  const targetGroups = state.spec?.lifecycle.targetGroups ?? [];
  const serving = watched.filter((m) => m.phase === 'in-service' && !m.leaving && !m.lost).map((m) => m.ec2InstanceId as string);
  if (targetGroups.length > 0 && serving.length > 0) {
    const repaired = await runStep(state.steps, 'targets', () => groupEc2Activities.ensureTargets(targetGroups, serving));
    if (repaired && repaired.length > 0) log.warn('re-registered targets someone removed', { repaired });
  }
}
