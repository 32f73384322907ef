import type { Instance } from '@aws-sdk/client-ec2';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { instanceWorkflowId } from '../common/names';
import { renderDeep, renderTemplate } from '../common/template';
import type { ImageSpec, InstanceWorkflowInput, LaunchedInstance } from '../common/types';
import type { ImageLookup } from '../workflows/decisions/images';
import { createHash } from 'node:crypto';
import { defaultEc2RateLimits } from '../adapters/aws/token-bucket';
import type { ActivityDeps, LaunchAttempt, RegistrationMaterial } from './deps';
import { describeImageId, lookupImage } from '../adapters/ec2/images';
import { InstanceObserver } from '../adapters/ec2/instance-observer';
import { launchedFrom, launchInstance, terminateInstance, type InstanceDeps } from '../adapters/ec2/instances';
import { selectSubnet, SubnetAddressCache } from '../adapters/ec2/subnets';
import { CapacityCooldown, TYPE_CAPACITY_SHORTAGES } from '../adapters/ec2/capacity-cooldown';
import { EC2_ARCHITECTURE, launchTemplateData } from './launch';

export type InstanceTarget = 'running' | 'terminated';

/**
 * The RunInstances ClientToken of one launch in one subnet. EC2 answers a retry that reuses a token with
 * the first launch's instance only if every other parameter is identical, so the token must change exactly
 * when the parameters may: with the subnet (a SubnetFull retry moves on to the next one) and with the
 * scheduled launch, whose time fixes the nonce's iat/exp in UserData (see LaunchAttempt).
 *
 * Still no duplicates: all attempts of one scheduled launch activity (the crash-and-retry window the token
 * exists for) share the token. The workflow schedules a new launch, with a new token, only after EC2
 * rejected the previous one (InsufficientFreeAddressesInSubnet, InsufficientInstanceCapacity), which launches
 * nothing; and every retried attempt first looks the instance up by its nstance:instance-id tag and adopts it.
 * A SHA-256 hex digest is 64 characters, RunInstances' limit.
 */
export function clientTokenFor(launch: LaunchAttempt, subnetId: string, fallbackType?: string): string {
  // A fallback type changes the parameters (InstanceType, and userdata's {{ .Instance.Type }}): its own token.
  // The preferred type keeps the token it always had, so a launch in flight across an upgrade still matches.
  const type = fallbackType === undefined ? '' : `\0${fallbackType}`;
  return createHash('sha256').update(`${launch.workflowId}\0${subnetId}\0${launch.issuedAtMs}${type}`).digest('hex');
}

const GONE_BEFORE_RUNNING = ['stopping', 'stopped', 'shutting-down', 'terminated'];

/** Whether what EC2 shows of an instance is the state waited for: `{ instance }` when it is, undefined to keep waiting. */
function reachedTarget(ec2InstanceId: string, target: InstanceTarget, seen: Instance | undefined): { instance?: LaunchedInstance } | undefined {
  const state = seen?.State?.Name;
  if (target === 'terminated') return !seen || state === 'terminated' ? { instance: seen && launchedFrom(seen, true) } : undefined;
  if (seen && state === 'running') return { instance: launchedFrom(seen, true) };
  if (state !== undefined && GONE_BEFORE_RUNNING.includes(state)) {
    throw ApplicationFailure.create({ type: 'InstanceLost', nonRetryable: true, message: `instance ${ec2InstanceId} went ${state} before it was running` });
  }
  return undefined;
}

/** EC2 activities of an instance's life (and the group's view of its instances). */
export function createInstanceActivities(deps: ActivityDeps) {
  const limits = deps.ec2Limits ?? defaultEc2RateLimits();
  const ec2: InstanceDeps = { ec2: deps.aws.ec2, limits };
  // One of each per worker: every activity of the process shares the batched view and the subnet counts.
  const observer = deps.instanceObserver ?? new InstanceObserver({ ec2: deps.aws.ec2, describeLimit: limits.describe, pollMs: deps.pollIntervalMs ?? 1000 });
  const subnets = deps.subnetAddresses ?? new SubnetAddressCache({ ec2: deps.aws.ec2, describeLimit: limits.describe });
  const cooldown = deps.capacityCooldown ?? new CapacityCooldown();

  /** Why a fallback image cannot launch this template, or undefined (also when EC2 cannot be asked). */
  async function fallbackMismatch(imageId: string, arch: 'amd64' | 'arm64'): Promise<string | undefined> {
    const seen = await describeImageId({ ec2: deps.aws.ec2, describeLimit: limits.describe }, imageId);
    if (seen && !seen.known) return `EC2 does not know ${imageId}`;
    const want = EC2_ARCHITECTURE[arch];
    return seen?.architecture && seen.architecture !== want ? `${imageId} is ${seen.architecture} but the template is ${arch} (${want})` : undefined;
  }

  return {
    /** Looks every image up; a failure is reported per image (the group keeps its last good id). */
    async lookupImages(images: Record<string, ImageSpec>, arch: 'amd64' | 'arm64'): Promise<Record<string, ImageLookup>> {
      const out: Record<string, ImageLookup> = {};
      for (const [name, spec] of Object.entries(images)) {
        try {
          const found = await lookupImage({ ec2: deps.aws.ec2, describeLimit: limits.describe }, name, spec);
          const want = EC2_ARCHITECTURE[arch];
          if (found?.architecture && found.architecture !== want) {
            out[name] = { error: `resolved to ${found.imageId} (${found.architecture}) but the template is ${arch} (${want})` };
          } else {
            out[name] = { imageId: found?.imageId };
          }
        } catch (err) {
          out[name] = { error: (err as Error).message };
        }
        const fallback = spec.fallback?.[0];
        if (!out[name].imageId && fallback) {
          const rejected = await fallbackMismatch(fallback, arch);
          if (rejected) out[name].fallbackRejected = rejected;
        }
      }
      return out;
    },

    async selectSubnet(pool: string, subnetIds: string[], exclude: string[]): Promise<string> {
      return selectSubnet({ ec2: deps.aws.ec2, describeLimit: limits.describe, addresses: subnets }, pool, subnetIds, exclude);
    },

    /**
     * Launches (or adopts) the instance; userdata is rendered here so a nonce never enters history.
     * Every attempt of one scheduled launch renders identical parameters (same nonce, same token).
     */
    async launchInstance(input: InstanceWorkflowInput, imageIds: Record<string, string>, subnetId: string): Promise<LaunchedInstance> {
      // scheduledTimestampMs is the first attempt's: the same for every retry of this launch.
      const { info } = Context.current();
      const launch: LaunchAttempt = { workflowId: instanceWorkflowId(input.shard, input.instanceId), issuedAtMs: info.scheduledTimestampMs };
      const registration = deps.issueRegistrationNonce ? await deps.issueRegistrationNonce(input, launch) : { nonce: '', caCertificate: '' };
      const types = input.launch.instanceTypes ?? [input.launch.instanceType];
      if (types.length <= 1) return launchAs(input, imageIds, subnetId, launch, registration, info.attempt > 1, undefined);
      // Fallback list: the preferred type first, skipping those EC2 just had no capacity for in this subnet.
      const candidates = cooldown.available(types, subnetId);
      const refused: string[] = [];
      for (const [i, type] of candidates.entries()) {
        try {
          const fallback = type === types[0] ? undefined : type;
          return await launchAs({ ...input, launch: { ...input.launch, instanceType: type } }, imageIds, subnetId, launch, registration, i === 0 && info.attempt > 1, fallback);
        } catch (err) {
          if (!(err instanceof ApplicationFailure && err.type === 'InsufficientCapacity' && TYPE_CAPACITY_SHORTAGES.includes(String(err.details?.[0])))) throw err;
          cooldown.mark(type, subnetId);
          refused.push(type);
        }
      }
      const cooling = types.filter((t) => !candidates.includes(t));
      // Non-retryable here: the instance workflow moves on to the pool's next subnet, then backs off.
      throw ApplicationFailure.create({
        type: 'InsufficientCapacity',
        nonRetryable: true,
        message:
          `InsufficientInstanceCapacity: no capacity for ${input.instanceId} in ${subnetId} for any of ${types.join(', ')}` +
          `${refused.length > 0 ? ` (refused now: ${refused.join(', ')})` : ''}${cooling.length > 0 ? ` (cooling down after a refusal: ${cooling.join(', ')})` : ''}`,
        details: ['InsufficientInstanceCapacity', types.join(','), subnetId],
      });
    },

    /**
     * Waits until EC2 shows the instance in `target`, heartbeating on every look so a dead worker is
     * noticed. The wait is one of the worker's waiters: one batched DescribeInstances per poll interval
     * serves them all. An instance Describe does not show yet is waited for (eventual consistency).
     */
    async awaitInstanceState(ec2InstanceId: string, target: InstanceTarget): Promise<LaunchedInstance | undefined> {
      const ctx = Context.current();
      const reached = await observer.waitFor(ec2InstanceId, (seen) => reachedTarget(ec2InstanceId, target, seen), {
        signal: ctx.cancellationSignal,
        onLook: (seen, error) => ctx.heartbeat(error ? `look failed: ${error.message}` : (seen?.State?.Name ?? 'not-visible-yet')),
      });
      return reached.instance;
    },

    /** EC2 state of each instance; 'missing' when Describe does not show it (which may be eventual consistency). */
    async observeInstances(ec2InstanceIds: string[]): Promise<Record<string, string>> {
      const seen = await observer.observe(ec2InstanceIds);
      return Object.fromEntries(ec2InstanceIds.map((id) => [id, seen.get(id)?.State?.Name ?? 'missing']));
    },

    /** Terminates (idempotently) and waits until EC2 shows it terminated (or no longer shows it). */
    async terminateInstance(ec2InstanceId: string): Promise<void> {
      const ctx = Context.current();
      await terminateInstance(ec2, ec2InstanceId);
      await observer.waitFor(ec2InstanceId, (seen) => (!seen || seen.State?.Name === 'terminated' ? true : undefined), {
        signal: ctx.cancellationSignal,
        onLook: (seen, error) => ctx.heartbeat(error ? `look failed: ${error.message}` : (seen?.State?.Name ?? 'gone')),
      });
    },
  };

  /** One RunInstances (or adoption) as one instance type; `fallbackType` set when it is not the preferred one. */
  async function launchAs(
    input: InstanceWorkflowInput,
    imageIds: Record<string, string>,
    subnetId: string,
    launch: LaunchAttempt,
    registration: RegistrationMaterial,
    findExisting: boolean,
    fallbackType: string | undefined,
  ): Promise<LaunchedInstance> {
    const data = launchTemplateData(input, imageIds, registration);
    const where = `group ${input.tenant}/${input.group}`;
    const args = renderDeep(input.launch.args, data, `${where} args`) as Record<string, unknown>;
    const imageId = typeof args.ImageId === 'string' ? args.ImageId : Object.values(imageIds)[0];
    if (!imageId) {
      throw ApplicationFailure.create({
        type: 'ConfigInvalid',
        nonRetryable: true,
        message: `${where}: no ImageId: set args.ImageId (for example "{{ .Image.<name> }}")`,
      });
    }
    const request = {
      clusterId: input.clusterId,
      shard: input.shard,
      tenant: input.tenant,
      group: input.group,
      instanceId: input.instanceId,
      clientToken: clientTokenFor(launch, subnetId, fallbackType),
      imageId,
      instanceType: input.launch.instanceType,
      subnetId,
      args,
      userData: input.launch.userdata === undefined ? undefined : renderTemplate(input.launch.userdata, data, `${where} userdata`),
    };
    try {
      // Only a retried attempt can find its instance by tag: the first attempt of a launch made none yet.
      return await launchInstance(ec2, request, { findExisting });
    } catch (err) {
      if (err instanceof ApplicationFailure && err.type === 'SubnetFull') subnets.markFull(subnetId);
      throw err;
    }
  }
}
