import { allHandlersFinished, ApplicationFailure, condition, continueAsNew, isCancellation, log, patched, setHandler, sleep, workflowInfo } from '@temporalio/workflow';
import type { InstanceUpdate, InstanceWorkflowInput, LaunchedInstance, LifecycleSpec, Phase } from '../common/types';
import { auditActivities, drainActivities, ec2Activities, launchActivities, loadBalancerActivities, terminateActivities, waitActivities } from './activity-options';
import { agentRegisteredSignal, instanceHealthSignal, instanceStatusQuery, terminateSignal, type AgentRegistration, type TerminateRequest } from './definitions';
import { nextExpiry } from './decisions/expiry';
import { drainBudgetMs } from './decisions/notice';
import { errorMessage, failureType } from '../common/failures';
import { InstanceReporter } from './instance-reporter';
import { terminateSummary } from './activity-summaries';

export interface InstanceOutcome {
  instanceId: string;
  ec2InstanceId?: string;
  phase: Phase;
  reason?: string;
}

const DEFAULT_LIFECYCLE: LifecycleSpec = { registrationTimeoutMs: 5 * 60_000, drainTimeoutMs: 5 * 60_000, targetGroups: [] };

/**
 * One instance's life: provisioning → running → registered → in-service →
 * draining → terminating → terminated. Every transition is reported to the
 * group and shown in NstancePhase; nothing periodic enters history.
 */
export async function instanceWorkflow(input: InstanceWorkflowInput): Promise<InstanceOutcome> {
  const life = input.lifecycle ?? DEFAULT_LIFECYCLE;
  const report = new InstanceReporter(input);
  let leave: TerminateRequest | undefined;
  let registration: AgentRegistration | undefined;
  let healthChanged = false;

  setHandler(instanceStatusQuery, () => report.status);
  setHandler(terminateSignal, (request) => {
    leave ??= request;
  });
  // Highest leadership epoch heard from the agent API. Rebuilt from the signals on replay, so it
  // survives worker restarts; a signal stamped lower comes from a deposed leader and is dropped.
  let leaderEpoch = input.resume?.leaderEpoch ?? 0;
  const fromCurrentLeader = (signal: string, epoch: number | undefined): boolean => {
    // Unstamped: sent before epochs existed (recorded histories, an older worker). Nothing to judge by.
    if (epoch === undefined) return true;
    if (epoch < leaderEpoch) {
      log.warn('ignoring a signal from a deposed leader', { signal, epoch, leaderEpoch, instanceId: input.instanceId });
      return false;
    }
    leaderEpoch = epoch;
    return true;
  };
  setHandler(agentRegisteredSignal, (r) => {
    if (fromCurrentLeader('agentRegistered', r.leaderEpoch)) registration ??= r;
  });
  setHandler(instanceHealthSignal, (h) => {
    if (!fromCurrentLeader('instanceHealth', h.leaderEpoch)) return;
    // A notice's deadline is news even without a change of status (the agent API signals once per deadline):
    // the group times the drain by it.
    if (h.status === 'termination-notice' && h.deadline !== undefined && h.deadline !== report.status.noticeDeadline) {
      report.status.noticeDeadline = h.deadline;
      healthChanged = true;
    }
    if (report.status.health === h.status) return;
    report.status.health = h.status;
    healthChanged = true;
  });

  let launched: LaunchedInstance;
  let inService = false;
  let since = 0;
  if (input.resume) {
    ({ launched, since } = input.resume);
    inService = true;
  } else {
    const entered = await enterService(input, life, report, () => leave, () => registration);
    if ('outcome' in entered) return entered.outcome;
    ({ launched, inService } = entered);
    since = Date.now();
  }

  // In service: only health transitions and the instance's own age timers wake us.
  while (!leave) {
    const due = nextExpiry(life.expiry, since, report.status.expiry);
    // Also woken when the server suggests continuing as new: signals that change nothing still add events.
    const woken = () => leave !== undefined || healthChanged || workflowInfo().continueAsNewSuggested;
    if (due === undefined) await condition(woken);
    else await condition(woken, Math.max(1, due.at - Date.now()));
    if (due && !leave && Date.now() >= due.at) {
      report.status.expiry = due.expiry;
      healthChanged = true;
    }
    if (healthChanged) {
      healthChanged = false;
      await report.notify();
    }
    // Every signal costs events (a flapping agent, reports re-sent after leader changes): one
    // history must not grow without bound over an instance's weeks in service. The next run
    // resumes here, in service.
    if (!leave && workflowInfo().continueAsNewSuggested) {
      await condition(allHandlersFinished);
      // A change that landed meanwhile is told to the group first (the next pass), not lost in the move.
      if (!leave && !healthChanged) {
        await continueAsNew<typeof instanceWorkflow>({ ...input, resume: { launched, status: { ...report.status }, since, leaderEpoch } });
      }
    }
  }

  const request = leave as TerminateRequest;
  if (inService && request.drain !== false && life.targetGroups.length > 0) {
    await report.transition('draining');
    const drainMs = drainBudgetMs(life.drainTimeoutMs, report.status.noticeDeadline, Date.now());
    try {
      const drained = await drainActivities(drainMs).drainTargets(life.targetGroups, launched.ec2InstanceId, drainMs);
      if (!drained) log.warn('drain timed out; terminating anyway', { instanceId: input.instanceId });
    } catch (err) {
      if (isCancellation(err)) throw err;
      // The instance is leaving either way: a failed drain must not keep it (and its group) waiting.
      log.warn('drain failed; terminating anyway', { instanceId: input.instanceId, error: errorMessage(err) });
    }
  }
  await terminate(report, request.reason);
  await Promise.all([
    report.audit('instance.terminate', { reason: request.reason, by: request.actor, drained: inService && request.drain !== false, ...(request.detail ? { detail: request.detail } : {}) }),
    report.transition('terminated'),
  ]);
  return { instanceId: input.instanceId, ec2InstanceId: report.status.ec2InstanceId, phase: 'terminated', reason: request.reason };
}

/**
 * Provisioning → running → registered → in service. Returns the launched instance and
 * whether it went in service (not when it was told to leave on the way), or, when it
 * cannot serve, the outcome of its failure.
 */
async function enterService(
  input: InstanceWorkflowInput,
  life: LifecycleSpec,
  report: InstanceReporter,
  leave: () => TerminateRequest | undefined,
  registration: () => AgentRegistration | undefined,
): Promise<{ launched: LaunchedInstance; inService: boolean } | { outcome: InstanceOutcome }> {
  let launched: LaunchedInstance;
  try {
    launched = await provision(input, report);
    report.set({ ec2InstanceId: launched.ec2InstanceId, launchedAt: launched.launchedAt, privateIp: launched.privateIp, ...(launched.instanceType ? { instanceType: launched.instanceType } : {}) });
    if (input.launched && input.launchReported) {
      // Its batch audited it and told the group (activities/group-activities.ts): two activities, their workflow
      // tasks and a report fewer per instance of a scale-up. Decided by the input, which a replayed history
      // carries as it was, so no patch marker is needed.
      if (!leave()) await report.transition('running', {}, { tellGroup: false });
    } else {
      // Audit and the wait run side by side: one workflow task instead of two.
      const audited = report.audit('instance.create', { subnetId: launched.subnetId, imageId: launched.imageId, adopted: launched.adopted });
      const running = leave() ? undefined : waitActivities.awaitInstanceState(launched.ec2InstanceId, 'running');
      const [, seen] = await Promise.all([audited, running]);
      if (!leave()) await report.transition('running', { privateIp: seen?.privateIp ?? report.status.privateIp });
    }
  } catch (err) {
    if (isCancellation(err)) throw err;
    return { outcome: await fail(report, errorMessage(err), 'instance.failed') };
  }

  if (!leave()) {
    const registered = await condition(() => registration() !== undefined || leave() !== undefined, life.registrationTimeoutMs);
    if (!registered) {
      return { outcome: await fail(report, `agent did not register within ${Math.round(life.registrationTimeoutMs / 1000)}s`, 'instance.registration-timeout') };
    }
  }
  if (!registration() || leave()) return { launched, inService: false };
  await report.transition('registered', {}, { tellGroup: false });
  if (life.targetGroups.length > 0) {
    try {
      await loadBalancerActivities.registerTargets(life.targetGroups, launched.ec2InstanceId);
    } catch (err) {
      if (isCancellation(err)) throw err;
      // Never in service: terminate it and let the group replace it, rather than fail silently.
      return { outcome: await fail(report, `could not register in its target groups: ${errorMessage(err)}`, 'instance.failed') };
    }
  }
  await report.transition('in-service');
  return { launched, inService: true };
}

/**
 * Shortages (no instance capacity, or no subnet of the pool with addresses left) are retried here,
 * slowly, and reported to the group while they last; past the last retry the instance fails and the
 * group's own (longer) creation backoff takes over.
 */
const CAPACITY_RETRIES = 5;
const CAPACITY_BACKOFF_MS = 5_000;
const SHORTAGES = ['InsufficientCapacity', 'SubnetPoolExhausted'];

async function provision(input: InstanceWorkflowInput, report: InstanceReporter): Promise<LaunchedInstance> {
  // The group's start batch launched it already (activities/batch-launch.ts).
  if (input.launched) return input.launched;
  const imageIds = input.imageIds ?? (await lookupImagesNow(input));
  const full: string[] = [];
  // Subnets where no type of the fallback list had capacity (always empty without a list).
  const noCapacity: string[] = [];
  let lastNoCapacity: string | undefined;
  let shortages = 0;
  for (;;) {
    let subnetId: string | undefined;
    try {
      subnetId = await ec2Activities.selectSubnet(input.launch.subnetPool, input.launch.subnetIds, noCapacity.length > 0 ? [...full, ...noCapacity] : full);
      const launched = await launchActivities.launchInstance(input, imageIds, subnetId);
      if (shortages > 0) report.set({ error: undefined });
      return launched;
    } catch (err) {
      const type = failureType(err);
      // A full subnet is not the end: the pool's next subnet may have room.
      if (type === 'SubnetFull' && subnetId !== undefined) {
        full.push(subnetId);
        continue;
      }
      // No capacity for any type of the fallback list here: the pool's next subnet, before backing off.
      if (type === 'InsufficientCapacity' && subnetId !== undefined && (input.launch.instanceTypes?.length ?? 0) > 1 && patched('i11-capacity-next-subnet')) {
        noCapacity.push(subnetId);
        lastNoCapacity = errorMessage(err);
        continue;
      }
      if (type !== undefined && SHORTAGES.includes(type) && ++shortages <= CAPACITY_RETRIES) {
        // The pool ran out because no subnet had capacity for any type: say that, not "no subnet left".
        report.set({ error: type === 'SubnetPoolExhausted' && lastNoCapacity !== undefined ? lastNoCapacity : errorMessage(err) });
        await report.notify();
        await sleep(CAPACITY_BACKOFF_MS * 2 ** (shortages - 1));
        // Addresses come back as instances terminate: after the wait every subnet of the pool is worth a try again.
        full.length = 0;
        noCapacity.length = 0;
        lastNoCapacity = undefined;
        continue;
      }
      throw err;
    }
  }
}

/** Started without the group's cached ids (an older caller): look them up once. */
async function lookupImagesNow(input: InstanceWorkflowInput): Promise<Record<string, string>> {
  const found = await ec2Activities.lookupImages(input.launch.images, input.launch.arch);
  const ids: Record<string, string> = {};
  for (const [name, spec] of Object.entries(input.launch.images)) {
    const id = found[name]?.imageId ?? spec.fallback?.[0];
    if (!id) throw ApplicationFailure.nonRetryable(`images.${name}: ${found[name]?.error ?? 'no image matches'} and no fallback`, 'ConfigInvalid');
    ids[name] = id;
  }
  return ids;
}

async function terminate(report: InstanceReporter, reason: string): Promise<void> {
  await report.transition('terminating', {}, { tellGroup: false });
  const ec2InstanceId = report.status.ec2InstanceId;
  if (!ec2InstanceId) return;
  // The reason is not among the activity's arguments: named here for the Web UI ("terminate i-… (expired-forced)").
  await terminateActivities.terminateInstance.executeWithOptions({ summary: terminateSummary(ec2InstanceId, reason) }, [ec2InstanceId]);
}

/** The instance cannot serve: terminate whatever was launched, audit, tell the group (which replaces it). */
async function fail(report: InstanceReporter, reason: string, action: string): Promise<InstanceOutcome> {
  log.warn('instance failed', { instanceId: report.status.instanceId, reason });
  if (report.status.ec2InstanceId) await terminate(report, reason);
  await report.audit(action, { reason });
  await report.transition('failed', { error: reason });
  return { instanceId: report.status.instanceId, ec2InstanceId: report.status.ec2InstanceId, phase: 'failed', reason };
}

export type { InstanceUpdate };
