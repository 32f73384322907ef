import type { Instance } from '@aws-sdk/client-ec2';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { instanceWorkflowId } from '../common/names';
import type { ImageSpec, InstanceWorkflowInput, LaunchedInstance } from '../common/types';
import type { ImageLookup } from '../workflows/decisions/images';
import { defaultEc2RateLimits } from '../adapters/aws/token-bucket';
import type { ActivityDeps, LaunchAttempt } from './deps';
import { describeImageId, lookupImage } from '../adapters/ec2/images';
import { InstanceObserver } from '../adapters/ec2/instance-observer';
import { launchedFrom, terminateInstance, type InstanceDeps } from '../adapters/ec2/instances';
import { EC2_ARCHITECTURE } from './launch';
import { launcherFor } from './launcher';

export { clientTokenFor } from './client-token';

export type InstanceTarget = 'running' | 'terminated';

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
  const launcher = launcherFor(deps);

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
      return launcher.selectSubnet(pool, subnetIds, exclude);
    },

    /**
     * Launches (or adopts) the instance; userdata is rendered here so a nonce never enters history.
     * Every attempt of one scheduled launch renders identical parameters (same nonce, same token).
     */
    async launchInstance(input: InstanceWorkflowInput, imageIds: Record<string, string>, subnetId: string): Promise<LaunchedInstance> {
      // scheduledTimestampMs is the first attempt's: the same for every retry of this launch.
      const { info } = Context.current();
      const launch: LaunchAttempt = { workflowId: instanceWorkflowId(input.shard, input.instanceId), issuedAtMs: info.scheduledTimestampMs };
      // Only a retried attempt can find its instance by tag, or one the group's batch may have launched already.
      return launcher.launch(input, imageIds, subnetId, launch, info.attempt > 1 || input.findExisting === true);
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
}
