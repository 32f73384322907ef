import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { instanceWorkflowId } from '../common/names';
import { renderDeep, renderTemplate } from '../common/template';
import type { ImageSpec, InstanceWorkflowInput, LaunchedInstance } from '../common/types';
import type { ImageLookup } from '../workflows/decisions/images';
import { createHash } from 'node:crypto';
import { classifyAwsError } from './aws/errors';
import { defaultEc2RateLimits } from './aws/token-bucket';
import type { ActivityDeps, LaunchAttempt } from './deps';
import { describeImageId, lookupImage } from './ec2/images';
import { describeInstance, describeInstancesById, launchInstance, terminateInstance, type InstanceDeps } from './ec2/instances';
import { selectSubnet } from './ec2/subnets';
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
 * nothing; and every attempt first looks the instance up by its nstance:instance-id tag and adopts it.
 * A SHA-256 hex digest is 64 characters, RunInstances' limit.
 */
export function clientTokenFor(launch: LaunchAttempt, subnetId: string): string {
  return createHash('sha256').update(`${launch.workflowId}\0${subnetId}\0${launch.issuedAtMs}`).digest('hex');
}

/** EC2 activities of an instance's life (and the group's view of its instances). */
export function createInstanceActivities(deps: ActivityDeps) {
  const limits = deps.ec2Limits ?? defaultEc2RateLimits();
  const ec2: InstanceDeps = { ec2: deps.aws.ec2, limits };
  const pollMs = deps.pollIntervalMs ?? 1000;

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
      return selectSubnet({ ec2: deps.aws.ec2, describeLimit: limits.describe }, pool, subnetIds, exclude);
    },

    /**
     * Launches (or adopts) the instance; userdata is rendered here so a nonce never enters history.
     * Every attempt of one scheduled launch renders identical parameters (same nonce, same token).
     */
    async launchInstance(input: InstanceWorkflowInput, imageIds: Record<string, string>, subnetId: string): Promise<LaunchedInstance> {
      // scheduledTimestampMs is the first attempt's: the same for every retry of this launch.
      const launch: LaunchAttempt = { workflowId: instanceWorkflowId(input.shard, input.instanceId), issuedAtMs: Context.current().info.scheduledTimestampMs };
      const registration = deps.issueRegistrationNonce ? await deps.issueRegistrationNonce(input, launch) : { nonce: '', caCertificate: '' };
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
      return launchInstance(ec2, {
        clusterId: input.clusterId,
        shard: input.shard,
        tenant: input.tenant,
        group: input.group,
        instanceId: input.instanceId,
        clientToken: clientTokenFor(launch, subnetId),
        imageId,
        instanceType: input.launch.instanceType,
        subnetId,
        args,
        userData: input.launch.userdata === undefined ? undefined : renderTemplate(input.launch.userdata, data, `${where} userdata`),
      });
    },

    /** Polls EC2 until the instance reaches `target`, heartbeating so a dead worker is noticed. */
    async awaitInstanceState(ec2InstanceId: string, target: InstanceTarget): Promise<LaunchedInstance | undefined> {
      const ctx = Context.current();
      for (;;) {
        const seen = await describeInstance(ec2, ec2InstanceId).catch((err: unknown) => {
          throw classifyAwsError(err, `DescribeInstances ${ec2InstanceId}`);
        });
        ctx.heartbeat(seen?.state ?? 'not-visible-yet');
        if (target === 'terminated' && (!seen || seen.state === 'terminated')) return seen;
        if (target === 'running' && seen?.state === 'running') return seen;
        if (target === 'running' && seen && ['stopping', 'stopped', 'shutting-down', 'terminated'].includes(seen.state)) {
          throw ApplicationFailure.create({
            type: 'InstanceLost',
            nonRetryable: true,
            message: `instance ${ec2InstanceId} went ${seen.state} before it was running`,
          });
        }
        await ctx.sleep(pollMs);
      }
    },

    /** EC2 state of each instance; 'missing' when Describe does not show it (which may be eventual consistency). */
    async observeInstances(ec2InstanceIds: string[]): Promise<Record<string, string>> {
      const states: Record<string, string> = Object.fromEntries(ec2InstanceIds.map((id) => [id, 'missing']));
      // An instance-id filter, unlike InstanceIds, does not fail the whole call on one unknown id.
      for (let i = 0; i < ec2InstanceIds.length; i += 200) {
        await limits.describe.take();
        const seen = await describeInstancesById(deps.aws.ec2, ec2InstanceIds.slice(i, i + 200));
        for (const [id, state] of seen) states[id] = state;
      }
      return states;
    },

    /** Terminates (idempotently) and waits until EC2 shows it terminated. */
    async terminateInstance(ec2InstanceId: string): Promise<void> {
      const ctx = Context.current();
      await terminateInstance(ec2, ec2InstanceId);
      for (;;) {
        const seen = await describeInstance(ec2, ec2InstanceId).catch((err: unknown) => {
          throw classifyAwsError(err, `DescribeInstances ${ec2InstanceId}`);
        });
        ctx.heartbeat(seen?.state ?? 'gone');
        if (!seen || seen.state === 'terminated') return;
        await ctx.sleep(pollMs);
      }
    },
  };
}
