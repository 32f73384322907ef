/**
 * Moving the shard's "leader network" ENI to the leader's instance. AWS attach
 * is not idempotent, moves through attaching/detaching states, and rejects an
 * attach while the ENI is still in use; so every step re-reads the ENI and
 * decides from what EC2 says, never from what we believe we did.
 */
import {
  AttachNetworkInterfaceCommand,
  CreateTagsCommand,
  DescribeNetworkInterfacesCommand,
  DetachNetworkInterfaceCommand,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import { ApplicationFailure } from '@temporalio/common';
import { isStaleEpoch, parseEpoch } from '../../workflows/decisions/leader';
import { awsErrorCode, classifyAwsError, isAwsErrorCode, withAwsErrors } from '../aws/errors';

export const LEADER_TAG = { epoch: 'nstance:leader-epoch', worker: 'nstance:leader-worker' } as const;
/** eth1: eth0 is the instance's own primary interface. */
export const LEADER_DEVICE_INDEX = 1;

export interface InterfaceState {
  interfaceId: string;
  /** available | in-use | attaching | detaching ... as EC2 reports it. */
  status: string;
  privateIp?: string;
  attachment?: { attachmentId: string; instanceId?: string; deviceIndex?: number; status: string };
  epoch?: number;
}

export interface NetworkDeps {
  ec2: EC2Client;
  pollMs?: number;
  sleep?: (ms: number) => Promise<void>;
  /** Called on every poll so the activity heartbeats while it waits. */
  progress?: (step: string) => void;
}

export async function describeInterface(ec2: EC2Client, interfaceId: string): Promise<InterfaceState> {
  const out = await withAwsErrors(`describing network interface ${interfaceId}`, () =>
    ec2.send(new DescribeNetworkInterfacesCommand({ NetworkInterfaceIds: [interfaceId] })),
  );
  const eni = out.NetworkInterfaces?.[0];
  if (!eni) {
    throw ApplicationFailure.create({ type: 'AwsRequestRejected', nonRetryable: true, message: `leader network interface ${interfaceId} does not exist` });
  }
  const a = eni.Attachment;
  return {
    interfaceId,
    status: eni.Status ?? 'unknown',
    privateIp: eni.PrivateIpAddress,
    attachment: a?.AttachmentId ? { attachmentId: a.AttachmentId, instanceId: a.InstanceId, deviceIndex: a.DeviceIndex, status: a.Status ?? 'unknown' } : undefined,
    epoch: parseEpoch(eni.TagSet?.find((t) => t.Key === LEADER_TAG.epoch)?.Value),
  };
}

/** Force: the old leader may be dead or partitioned and will never release it itself. */
export async function forceDetach(ec2: EC2Client, attachmentId: string): Promise<void> {
  try {
    await ec2.send(new DetachNetworkInterfaceCommand({ AttachmentId: attachmentId, Force: true }));
  } catch (err) {
    // Already detached (by an earlier attempt or the old host going away): nothing to do.
    if (isAwsErrorCode(err, 'InvalidAttachmentID.NotFound')) return;
    throw classifyAwsError(err, `force-detaching ${attachmentId}`);
  }
}

/** AWS answers an attach to a busy ENI with InvalidParameterValue "...in use": expected, not a bad request. */
export function isInUseError(err: unknown): boolean {
  const code = awsErrorCode(err);
  const message = err instanceof Error ? err.message : '';
  return code === 'InvalidNetworkInterface.InUse' || (code === 'InvalidParameterValue' && /in use|already attached/i.test(message));
}

export type AttachOutcome = { attached: true; attachmentId: string } | { attached: false; inUse: true };

export async function attachInterface(ec2: EC2Client, interfaceId: string, instanceId: string): Promise<AttachOutcome> {
  try {
    const out = await ec2.send(new AttachNetworkInterfaceCommand({ NetworkInterfaceId: interfaceId, InstanceId: instanceId, DeviceIndex: LEADER_DEVICE_INDEX }));
    return { attached: true, attachmentId: out.AttachmentId ?? '' };
  } catch (err) {
    if (isInUseError(err)) return { attached: false, inUse: true };
    throw classifyAwsError(err, `attaching ${interfaceId} to ${instanceId}`);
  }
}

export async function tagEpoch(ec2: EC2Client, interfaceId: string, epoch: number, workerId: string): Promise<void> {
  await withAwsErrors(`tagging ${interfaceId} with epoch ${epoch}`, () =>
    ec2.send(
      new CreateTagsCommand({
        Resources: [interfaceId],
        Tags: [
          { Key: LEADER_TAG.epoch, Value: String(epoch) },
          { Key: LEADER_TAG.worker, Value: workerId },
        ],
      }),
    ),
  );
}

export interface MoveRequest {
  interfaceId: string;
  instanceId: string;
  epoch: number;
  workerId: string;
  timeoutMs: number;
}

export interface MoveResult {
  interfaceId: string;
  instanceId: string;
  attachmentId: string;
  epoch: number;
  /** Instance it was taken from, if any. */
  detachedFrom?: string;
  /** Attaches refused with "in use" and retried. */
  inUseRetries: number;
  attachedAt: string;
}

function staleEpoch(req: MoveRequest, current: number): ApplicationFailure {
  return ApplicationFailure.create({
    type: 'StaleEpoch',
    nonRetryable: true,
    message: `refusing to move ${req.interfaceId} for epoch ${req.epoch}: it is already tagged with newer epoch ${current}`,
  });
}

/**
 * Fence, then move: refuse if a newer epoch already claimed the ENI, claim it
 * with our epoch (so a delayed move from an older epoch is refused from now on),
 * force-detach from whoever holds it, wait until available, attach at device
 * index 1, and wait until EC2 shows it attached to the new leader.
 */
export async function moveLeaderNetwork(deps: NetworkDeps, req: MoveRequest): Promise<MoveResult> {
  const pollMs = deps.pollMs ?? 250;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const progress = deps.progress ?? (() => undefined);
  const deadline = Date.now() + req.timeoutMs;
  let detachedFrom: string | undefined;
  let inUseRetries = 0;
  let tagged = false;
  const detachRequested = new Set<string>();

  for (;;) {
    const s = await describeInterface(deps.ec2, req.interfaceId);
    if (isStaleEpoch(req.epoch, s.epoch)) throw staleEpoch(req, s.epoch as number);
    if (!tagged) {
      await tagEpoch(deps.ec2, req.interfaceId, req.epoch, req.workerId);
      tagged = true;
    }
    const a = s.attachment;
    const ours = a?.instanceId === req.instanceId;
    if (a && ours && a.status === 'attached' && s.status === 'in-use') {
      if (a.deviceIndex !== undefined && a.deviceIndex !== LEADER_DEVICE_INDEX) {
        throw ApplicationFailure.create({ type: 'AwsRequestRejected', nonRetryable: true, message: `${req.interfaceId} is attached to ${req.instanceId} at device index ${a.deviceIndex}, not ${LEADER_DEVICE_INDEX}` });
      }
      progress('attached');
      return { interfaceId: req.interfaceId, instanceId: req.instanceId, attachmentId: a.attachmentId, epoch: req.epoch, detachedFrom, inUseRetries, attachedAt: new Date().toISOString() };
    }
    if (a && !ours && (a.status === 'attached' || a.status === 'attaching') && !detachRequested.has(a.attachmentId)) {
      progress(`detaching from ${a.instanceId}`);
      detachedFrom = a.instanceId;
      detachRequested.add(a.attachmentId);
      await forceDetach(deps.ec2, a.attachmentId);
    } else if (!a && s.status === 'available') {
      progress(`attaching to ${req.instanceId}`);
      const outcome = await attachInterface(deps.ec2, req.interfaceId, req.instanceId);
      if (!outcome.attached) inUseRetries++;
      // Success or not, the next read says where it really is.
    } else {
      progress(`waiting: ${s.status}/${a?.status ?? 'no attachment'}`);
    }
    if (Date.now() > deadline) {
      // Retryable: the activity's retry policy starts over from a fresh read.
      throw ApplicationFailure.create({ type: 'LeaderNetworkTimeout', message: `${req.interfaceId} did not reach ${req.instanceId} within ${req.timeoutMs} ms (last: ${s.status}/${a?.status ?? 'no attachment'})` });
    }
    await sleep(pollMs);
  }
}
