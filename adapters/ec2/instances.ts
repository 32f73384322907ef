import {
  DescribeInstancesCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
  type EC2Client,
  type Instance,
  type RunInstancesCommandInput,
  type Tag,
  type TagSpecification,
} from '@aws-sdk/client-ec2';
import { ApplicationFailure } from '@temporalio/common';
import { TAG } from '../../common/names';
import type { LaunchedInstance } from '../../common/types';
import { activitySignal } from '../aws/cancellation';
import { awsErrorCode, CAPACITY_SHORTAGES, classifyAwsError, isAwsErrorCode, withAwsErrors } from '../aws/errors';
import type { Ec2RateLimits } from '../aws/token-bucket';

export interface InstanceDeps {
  ec2: EC2Client;
  limits: Ec2RateLimits;
}

export interface InstanceIdentity {
  clusterId: string;
  shard: string;
  tenant: string;
  group: string;
  instanceId: string;
}

export interface RunRequest extends InstanceIdentity {
  /**
   * Same token on every attempt of one launch: AWS returns the first launch instead of a second one,
   * provided every other field is identical too (else IdempotentParameterMismatch).
   */
  clientToken: string;
  imageId: string;
  instanceType: string;
  subnetId: string;
  /** RunInstances fields from config (already rendered); nstance-owned fields are set here. */
  args: Record<string, unknown>;
  userData?: string;
}

export function nstanceTags(id: InstanceIdentity): Tag[] {
  return [
    { Key: TAG.instanceId, Value: id.instanceId },
    { Key: TAG.clusterId, Value: id.clusterId },
    { Key: TAG.shard, Value: id.shard },
    { Key: TAG.group, Value: `${id.tenant}/${id.group}` },
    { Key: TAG.tenant, Value: id.tenant },
    { Key: TAG.managed, Value: 'true' },
    { Key: 'Name', Value: id.instanceId },
  ];
}

const ALIVE_STATES = ['pending', 'running', 'stopping', 'stopped', 'shutting-down'];

/** Our instance with this nstance id, if EC2 shows one that is not terminated. */
export async function findInstance(deps: InstanceDeps, id: InstanceIdentity): Promise<LaunchedInstance | undefined> {
  await deps.limits.describe.take(1, activitySignal());
  const out = await withAwsErrors(`DescribeInstances by tag for ${id.instanceId}`, () =>
    deps.ec2.send(
      new DescribeInstancesCommand({
        Filters: [
          { Name: `tag:${TAG.instanceId}`, Values: [id.instanceId] },
          { Name: `tag:${TAG.clusterId}`, Values: [id.clusterId] },
          { Name: 'instance-state-name', Values: ALIVE_STATES },
        ],
      }),
    ),
  );
  const found = (out.Reservations ?? []).flatMap((r) => r.Instances ?? []);
  // Oldest first, so that two launches racing each other agree on the survivor.
  found.sort((a, b) => (a.LaunchTime?.getTime() ?? 0) - (b.LaunchTime?.getTime() ?? 0));
  return found[0] ? launchedFrom(found[0], true) : undefined;
}

export function buildRunInstancesInput(req: RunRequest): RunInstancesCommandInput {
  const args = req.args as Partial<RunInstancesCommandInput>;
  const ours: TagSpecification[] = [
    { ResourceType: 'instance', Tags: nstanceTags(req) },
    { ResourceType: 'volume', Tags: nstanceTags(req) },
  ];
  return {
    ...args,
    ImageId: req.imageId,
    InstanceType: req.instanceType as RunInstancesCommandInput['InstanceType'],
    SubnetId: req.subnetId,
    MinCount: 1,
    MaxCount: 1,
    ClientToken: req.clientToken,
    UserData: req.userData === undefined ? undefined : Buffer.from(req.userData, 'utf8').toString('base64'),
    // IMDSv2 unless the config explicitly says otherwise.
    MetadataOptions: { HttpTokens: 'required', ...(args.MetadataOptions ?? {}) },
    TagSpecifications: mergeTagSpecifications(args.TagSpecifications ?? [], ours),
  };
}

/**
 * Config tags are kept, but never allowed to overwrite the nstance:* tags we find
 * instances by. `Name` is only a default: a Name the config sets wins.
 */
export function mergeTagSpecifications(fromConfig: TagSpecification[], ours: TagSpecification[]): TagSpecification[] {
  const byType = new Map<string, Tag[]>();
  for (const spec of fromConfig) byType.set(spec.ResourceType ?? 'instance', [...(spec.Tags ?? [])]);
  for (const spec of ours) {
    const type = spec.ResourceType ?? 'instance';
    const configured = byType.get(type) ?? [];
    const named = configured.some((t) => t.Key === 'Name');
    const added = (spec.Tags ?? []).filter((t) => !(t.Key === 'Name' && named));
    const keys = new Set(added.map((t) => t.Key));
    byType.set(type, [...configured.filter((t) => !keys.has(t.Key)), ...added]);
  }
  return [...byType.entries()].map(([ResourceType, Tags]) => ({ ResourceType: ResourceType as TagSpecification['ResourceType'], Tags }));
}

/**
 * Launches one instance unless a previous attempt already did. The look-up by tag covers a retry
 * after a crash (`findExisting`: a retried attempt; the first attempt of a launch has nothing to
 * find); the ClientToken covers the window in which EC2's eventual consistency still hides the first
 * launch from Describe.
 */
export async function launchInstance(deps: InstanceDeps, req: RunRequest, options: { findExisting: boolean } = { findExisting: true }): Promise<LaunchedInstance> {
  if (options.findExisting) {
    const existing = await findInstance(deps, req);
    if (existing) return existing;
  }
  await deps.limits.runInstances.take(1, activitySignal());
  try {
    const out = await deps.ec2.send(new RunInstancesCommand(buildRunInstancesInput(req)));
    const instance = out.Instances?.[0];
    if (!instance?.InstanceId) throw new Error('RunInstances returned no instance');
    return launchedFrom(instance, false);
  } catch (err) {
    if (isAwsErrorCode(err, 'InsufficientFreeAddressesInSubnet')) {
      throw ApplicationFailure.create({
        type: 'SubnetFull',
        nonRetryable: true,
        message: `subnet ${req.subnetId} has no free addresses for ${req.instanceId}`,
        details: [req.subnetId],
      });
    }
    const code = awsErrorCode(err);
    if (code !== undefined && CAPACITY_SHORTAGES.includes(code)) {
      // The workflow owns this retry (with a long backoff, and reporting it), not the activity's tight policy.
      throw ApplicationFailure.create({
        type: 'InsufficientCapacity',
        nonRetryable: true,
        message: `${code}: no ${req.instanceType} capacity for ${req.instanceId} in ${req.subnetId}: ${(err as Error).message}`,
        details: [code, req.instanceType, req.subnetId],
      });
    }
    throw classifyAwsError(err, `RunInstances for ${req.instanceId} in ${req.subnetId}`);
  }
}

/** Idempotent: an instance that is already gone counts as terminated. */
export async function terminateInstance(deps: InstanceDeps, ec2InstanceId: string): Promise<void> {
  await deps.limits.terminate.take(1, activitySignal());
  try {
    await deps.ec2.send(new TerminateInstancesCommand({ InstanceIds: [ec2InstanceId] }));
  } catch (err) {
    if (isAwsErrorCode(err, 'InvalidInstanceID.NotFound')) return;
    throw classifyAwsError(err, `TerminateInstances ${ec2InstanceId}`);
  }
}

/** What the workflows keep of an EC2 instance; `adopted`: found by tag (a retried launch), not launched now. */
export function launchedFrom(i: Instance, adopted: boolean): LaunchedInstance {
  return {
    ec2InstanceId: i.InstanceId ?? '',
    privateIp: i.PrivateIpAddress,
    launchedAt: i.LaunchTime?.toISOString(),
    state: i.State?.Name ?? 'unknown',
    subnetId: i.SubnetId,
    imageId: i.ImageId,
    ...(i.InstanceType ? { instanceType: i.InstanceType } : {}),
    adopted,
  };
}
