import { createHash } from 'node:crypto';
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { ConfigValidationError, resolveGroup, shardSettings } from '../common/config';
import type { AuditEntry, GroupRef, GroupSpecResult, InstanceWorkflowInput, LaunchedInstance } from '../common/types';
import type { AwsClients } from './aws/clients';
import { defaultEc2RateLimits, type Ec2RateLimits } from './aws/token-bucket';
import { resolveImage, type ResolvedImage } from './ec2/images';
import { describeInstance, launchInstance, terminateInstance, type InstanceDeps } from './ec2/instances';
import { selectSubnet } from './ec2/subnets';
import { EC2_ARCHITECTURE, launchTemplateData } from './launch';
import { writeAudit, type AuditResult } from './s3/audit';
import { ShardConfigStore } from './s3/config-store';
import { ObjectStore } from './s3/objects';
import { startInstanceWorkflows } from './temporal/start-instances';
import { renderDeep, renderTemplate } from '../common/template';
import { instanceWorkflowId } from '../common/names';
import { buildGroupSpec } from './group-spec';

export interface ActivityDeps {
  aws: AwsClients;
  bucket: string;
  temporal: Client;
  ec2Limits?: Ec2RateLimits;
  /** Seam for agent registration: mints the single-use nonce put in userdata. */
  issueRegistrationNonce?: (input: InstanceWorkflowInput) => Promise<string>;
  /** How often awaitInstanceState polls EC2. */
  pollIntervalMs?: number;
}

export interface LaunchResult extends LaunchedInstance {
  imageIds: Record<string, string>;
}

export type InstanceTarget = 'running' | 'terminated';

/** Activities are closures over injected clients, so tests point them at the emulator. */
export function createActivities(deps: ActivityDeps) {
  const limits = deps.ec2Limits ?? defaultEc2RateLimits();
  const ec2: InstanceDeps = { ec2: deps.aws.ec2, limits };
  const objects = new ObjectStore({ s3: deps.aws.s3, bucket: deps.bucket });
  const pollMs = deps.pollIntervalMs ?? 1000;

  return {
    /** The group's current spec from S3; `found: false` when the group was removed from config. */
    async loadGroupSpec(ref: GroupRef): Promise<GroupSpecResult> {
      try {
        const snapshot = await new ShardConfigStore(objects, ref.shard).load();
        if (!snapshot) {
          throw ApplicationFailure.create({
            type: 'ConfigMissing',
            nonRetryable: true,
            message: `no config for shard "${ref.shard}" at s3://${deps.bucket}/shard/${ref.shard}/config.jsonc: run "nstance config apply"`,
          });
        }
        const resolved = resolveGroup(snapshot.config, snapshot.dynamic, ref.tenant, ref.group);
        return buildGroupSpec(snapshot.config, resolved, shardSettings(snapshot.config));
      } catch (err) {
        if (err instanceof ConfigValidationError) {
          throw ApplicationFailure.create({ type: 'ConfigInvalid', nonRetryable: true, message: err.message });
        }
        throw err;
      }
    },

    /** Resolves the images a launch refers to, checking each against the template's architecture. */
    async resolveImages(input: InstanceWorkflowInput): Promise<Record<string, string>> {
      const ids: Record<string, string> = {};
      for (const [name, spec] of Object.entries(input.launch.images)) {
        const image: ResolvedImage = await resolveImage({ ec2: deps.aws.ec2, describeLimit: limits.describe }, name, spec);
        const want = EC2_ARCHITECTURE[input.launch.arch];
        if (image.architecture && image.architecture !== want) {
          throw ApplicationFailure.create({
            type: 'ConfigInvalid',
            nonRetryable: true,
            message: `images.${name} resolved to ${image.imageId} (${image.architecture}) but template kind "${input.launch.kind}" is ${input.launch.arch} (${want})`,
          });
        }
        ids[name] = image.imageId;
      }
      return ids;
    },

    async selectSubnet(pool: string, subnetIds: string[], exclude: string[]): Promise<string> {
      return selectSubnet({ ec2: deps.aws.ec2, describeLimit: limits.describe }, pool, subnetIds, exclude);
    },

    /** Launches (or adopts) the instance; userdata is rendered here so a nonce never enters history. */
    async launchInstance(input: InstanceWorkflowInput, imageIds: Record<string, string>, subnetId: string): Promise<LaunchResult> {
      const nonce = deps.issueRegistrationNonce ? await deps.issueRegistrationNonce(input) : '';
      const data = launchTemplateData(input, imageIds, nonce);
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
      const launched = await launchInstance(ec2, {
        clusterId: input.clusterId,
        shard: input.shard,
        tenant: input.tenant,
        group: input.group,
        instanceId: input.instanceId,
        clientToken: clientTokenFor(instanceWorkflowId(input.shard, input.instanceId)),
        imageId,
        instanceType: input.launch.instanceType,
        subnetId,
        args,
        userData: input.launch.userdata === undefined ? undefined : renderTemplate(input.launch.userdata, data, `${where} userdata`),
      });
      return { ...launched, imageIds };
    },

    /** Polls EC2 until the instance reaches `target`, heartbeating so a dead worker is noticed. */
    async awaitInstanceState(ec2InstanceId: string, target: InstanceTarget): Promise<LaunchedInstance | undefined> {
      const ctx = Context.current();
      for (;;) {
        const seen = await describeInstance(ec2, ec2InstanceId);
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

    async terminateInstance(ec2InstanceId: string): Promise<void> {
      await terminateInstance(ec2, ec2InstanceId);
    },

    async startInstanceWorkflows(inputs: InstanceWorkflowInput[], paceMs: number): Promise<string[]> {
      const ctx = Context.current();
      return startInstanceWorkflows(deps.temporal, inputs, paceMs, (id) => ctx.heartbeat(id));
    },

    /** One object per entry; a retry reuses the same key (the activity's identity) and writes nothing new. */
    async writeAudit(entry: AuditEntry): Promise<AuditResult> {
      const { activityId, workflowExecution } = Context.current().info;
      // Same on every attempt of this call, different for every other call.
      const dedupeKey = `${workflowExecution?.workflowId}/${workflowExecution?.runId}/${activityId}`;
      return writeAudit(objects, entry, dedupeKey);
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;

/** RunInstances allows 64 ASCII characters; a digest of the workflow id fits and is stable across attempts. */
export function clientTokenFor(workflowId: string): string {
  return createHash('sha256').update(workflowId).digest('hex').slice(0, 64);
}
