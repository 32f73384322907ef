import {
  ApplicationFailure,
  condition,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  setHandler,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import { searchAttributeUpdates } from '../common/search-attributes';
import type { InstanceUpdate, InstanceWorkflowInput, Phase } from '../common/types';
import { auditActivities, ec2Activities, launchActivities, waitActivities } from './activity-options';
import { instanceStatusQuery, instanceUpdateSignal, terminateSignal, type TerminateRequest } from './definitions';

export interface InstanceOutcome {
  instanceId: string;
  ec2InstanceId?: string;
  phase: Phase;
  reason?: string;
}

/**
 * One instance's life: provision, wait until EC2 runs it, serve until told to
 * go, terminate. Every transition is reported to the group and shown in the
 * NstancePhase search attribute.
 */
export async function instanceWorkflow(input: InstanceWorkflowInput): Promise<InstanceOutcome> {
  const status: InstanceUpdate = { instanceId: input.instanceId, phase: 'provisioning' };
  let terminateRequest: TerminateRequest | undefined;

  setHandler(instanceStatusQuery, () => status);
  setHandler(terminateSignal, (request) => {
    terminateRequest ??= request;
  });

  const transition = async (phase: Phase, change: Partial<InstanceUpdate> = {}) => {
    Object.assign(status, change, { phase });
    upsertSearchAttributes(
      searchAttributeUpdates({ NstancePhase: phase, NstanceInstanceId: status.ec2InstanceId }),
    );
    await notifyGroup(input.groupWorkflowId, { ...status });
  };
  const audit = (action: string, details?: Record<string, unknown>) =>
    auditActivities.writeAudit({
      shard: input.shard,
      action,
      actor: 'nstance',
      at: new Date(Date.now()).toISOString(),
      workflowId: `instance:${input.instanceId}`,
      tenant: input.tenant,
      group: input.group,
      instanceIds: [input.instanceId],
      ec2InstanceIds: status.ec2InstanceId ? [status.ec2InstanceId] : [],
      details,
    });

  try {
    const launched = await provision(input);
    status.ec2InstanceId = launched.ec2InstanceId;
    status.launchedAt = launched.launchedAt;
    status.privateIp = launched.privateIp;
    await audit('instance.create', { subnetId: launched.subnetId, imageId: launched.imageId, adopted: launched.adopted });
    if (!terminateRequest) {
      const running = await waitActivities.awaitInstanceState(launched.ec2InstanceId, 'running');
      await transition('running', { privateIp: running?.privateIp ?? status.privateIp, launchedAt: running?.launchedAt ?? status.launchedAt });
    }
  } catch (err) {
    if (isCancellation(err)) throw err;
    return fail(input, status, err, transition);
  }

  await condition(() => terminateRequest !== undefined);
  await terminate(status.ec2InstanceId, transition);
  await audit('instance.terminate', { reason: terminateRequest?.reason, by: terminateRequest?.actor });
  await transition('terminated');
  return { instanceId: input.instanceId, ec2InstanceId: status.ec2InstanceId, phase: 'terminated', reason: terminateRequest?.reason };
}

async function provision(input: InstanceWorkflowInput) {
  const imageIds = await ec2Activities.resolveImages(input);
  const full: string[] = [];
  for (;;) {
    const subnetId = await ec2Activities.selectSubnet(input.launch.subnetPool, input.launch.subnetIds, full);
    try {
      return await launchActivities.launchInstance(input, imageIds, subnetId);
    } catch (err) {
      // A full subnet is not the end: the pool's next subnet may have room.
      if (failureType(err) === 'SubnetFull') {
        full.push(subnetId);
        continue;
      }
      throw err;
    }
  }
}

async function terminate(ec2InstanceId: string | undefined, transition: (phase: Phase) => Promise<void>): Promise<void> {
  await transition('terminating');
  if (!ec2InstanceId) return;
  await ec2Activities.terminateInstance(ec2InstanceId);
  await waitActivities.awaitInstanceState(ec2InstanceId, 'terminated');
}

/** Provisioning failed for good: clean up whatever was launched, then tell the group. */
async function fail(
  input: InstanceWorkflowInput,
  status: InstanceUpdate,
  err: unknown,
  transition: (phase: Phase, change?: Partial<InstanceUpdate>) => Promise<void>,
): Promise<InstanceOutcome> {
  const reason = describeFailure(err);
  log.warn('instance failed', { instanceId: input.instanceId, reason });
  if (status.ec2InstanceId) {
    await terminate(status.ec2InstanceId, transition);
  }
  await auditActivities.writeAudit({
    shard: input.shard,
    action: 'instance.failed',
    actor: 'nstance',
    at: new Date(Date.now()).toISOString(),
    workflowId: `instance:${input.instanceId}`,
    tenant: input.tenant,
    group: input.group,
    instanceIds: [input.instanceId],
    ec2InstanceIds: status.ec2InstanceId ? [status.ec2InstanceId] : [],
    details: { reason },
  });
  await transition('failed', { error: reason });
  return { instanceId: input.instanceId, ec2InstanceId: status.ec2InstanceId, phase: 'failed', reason };
}

async function notifyGroup(groupWorkflowId: string, update: InstanceUpdate): Promise<void> {
  try {
    await getExternalWorkflowHandle(groupWorkflowId).signal(instanceUpdateSignal, update);
  } catch (err) {
    if (isCancellation(err)) throw err;
    // The group is gone (removed from config): nothing to tell.
    log.warn('group workflow not reachable', { groupWorkflowId, error: describeFailure(err) });
  }
}

function failureType(err: unknown): string | undefined {
  let e: unknown = err;
  while (e instanceof Error) {
    if (e instanceof ApplicationFailure) return e.type ?? undefined;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** The innermost message: an ActivityFailure's own message only says "activity failed". */
function describeFailure(err: unknown): string {
  let e: unknown = err;
  let message = String(err);
  while (e instanceof Error) {
    message = e.message || message;
    e = (e as { cause?: unknown }).cause;
  }
  return message;
}
