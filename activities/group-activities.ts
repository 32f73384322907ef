import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { ConfigValidationError, resolveGroup, shardSettings } from '../common/config';
import type { AuditEntry, GroupRef, GroupSpecResult, InstanceWorkflowInput } from '../common/types';
import { defaultEc2RateLimits } from '../adapters/aws/token-bucket';
import type { ActivityDeps } from './deps';
import { buildGroupSpec } from './group-spec';
import { InstanceRequirementsResolver } from '../adapters/ec2/instance-requirements';
import { writeAudit, type AuditResult } from '../adapters/s3/audit';
import { FRESH, ShardConfigCaches } from '../adapters/s3/config-cache';
import { ObjectStore } from '../adapters/s3/objects';
import { signalInstances, startInstanceBatch, type DeliveredRemovals, type InstanceBatch, type RemovalBatch, type StartedBatch } from '../adapters/temporal/instance-batch';
import { rebuildGroupMembers, type RebuildRequest, type RebuiltMembers } from '../adapters/temporal/rebuild';
import { startInstanceWorkflows, startOne } from '../adapters/temporal/start-instances';
import { emptyProgress, launchAccount, launchBatch, leftInputs, type BatchProgress } from './batch-launch';
import { launcherFor } from './launcher';

/** Config, audit and workflow-start activities of the group workflow. */
export function createGroupActivities(deps: ActivityDeps) {
  const objects = new ObjectStore({ s3: deps.aws.s3, bucket: deps.bucket });
  const configs = deps.configs ?? new ShardConfigCaches(objects);
  const limits = deps.ec2Limits ?? defaultEc2RateLimits();
  const requirements = new InstanceRequirementsResolver({ ec2: deps.aws.ec2, describeLimit: limits.describe });

  return {
    /**
     * The group's current spec; `found: false` when the group was removed from config. From the worker's
     * cached copy, revalidated (a 304 costs no download) after its TTL; `fresh` reads what was just written
     * (the group asks for it after `config apply` or `group scale` signalled it).
     */
    async loadGroupSpec(ref: GroupRef, options: { fresh?: boolean } = {}): Promise<GroupSpecResult> {
      try {
        const snapshot = await configs.for(ref.shard).snapshot(options.fresh ? FRESH : undefined);
        if (!snapshot) {
          throw ApplicationFailure.create({
            type: 'ConfigMissing',
            nonRetryable: true,
            message: `no config for shard "${ref.shard}" at s3://${deps.bucket}/shard/${ref.shard}/config.jsonc: run "nstance config apply"`,
          });
        }
        let resolved = resolveGroup(snapshot.config, snapshot.dynamic, ref.tenant, ref.group);
        if (resolved?.instanceRequirements) {
          // Attribute-based selection becomes the ordered fallback list the launches use (cached per worker).
          const types = await requirements.resolve(resolved.instanceRequirements, resolved.arch, `group ${ref.tenant}/${ref.group}`);
          resolved = { ...resolved, instanceType: types[0], instanceTypes: types };
        }
        return buildGroupSpec(snapshot.config, resolved, shardSettings(snapshot.config));
      } catch (err) {
        if (err instanceof ConfigValidationError) {
          throw ApplicationFailure.create({ type: 'ConfigInvalid', nonRetryable: true, message: err.message });
        }
        throw err;
      }
    },

    /** What the garbage collector needs from config: cluster id, interval and grace. */
    async loadShardSettings(shard: string): Promise<{ clusterId: string; gcIntervalMs: number; gcGraceMs: number; recordRetentionMs: number }> {
      const stored = await configs.for(shard).config();
      if (!stored) throw ApplicationFailure.create({ type: 'ConfigMissing', message: `no config for shard "${shard}"` });
      const settings = shardSettings(stored.config);
      return { clusterId: stored.config.cluster.id, gcIntervalMs: settings.gc.intervalMs, gcGraceMs: settings.gc.registrationTimeoutMs, recordRetentionMs: settings.gc.recordRetentionMs };
    },

    /** Kept for group runs from before fleet scale (one input per instance); newer runs use startInstanceBatch. */
    async startInstanceWorkflows(inputs: InstanceWorkflowInput[], paceMs: number): Promise<string[]> {
      const ctx = Context.current();
      return startInstanceWorkflows(deps.temporal, inputs, paceMs, (count) => ctx.heartbeat(count), resumedCount(ctx));
    },

    /**
     * Starts one batch of a group's instance workflows; the launch spec comes once for all of them. With
     * `launchFirst`, launches the batch's instances first (batch-launch.ts) and starts each workflow with its instance.
     */
    async startInstanceBatch(batch: InstanceBatch): Promise<StartedBatch> {
      const ctx = Context.current();
      if (!batch.launchFirst) return startInstanceBatch(deps.temporal, batch, (count) => ctx.heartbeat(count), resumedCount(ctx));
      const resumed = resumedProgress(ctx);
      const progress = await launchBatch(batch, {
        launcher: launcherFor(deps),
        issuedAtMs: ctx.info.scheduledTimestampMs,
        retried: ctx.info.attempt > 1,
        resumed,
        heartbeat: (p) => ctx.heartbeat(p),
        start: (input) => startOne(deps.temporal, input),
        signal: ctx.cancellationSignal,
      });
      // What the batch left to them launches from their own workflows (unspaced: spacing applied to the batch's launches).
      await startInstanceWorkflows(deps.temporal, leftInputs(batch, progress), 0);
      const { workflowExecution, scheduledTimestampMs } = ctx.info;
      const account = launchAccount(batch, progress, new Date(scheduledTimestampMs).toISOString(), workflowExecution?.workflowId ?? '');
      // Every attempt writes the same key (the activity's identity): a retry after the write is a no-op.
      if (account.audit) await writeAudit(objects, account.audit, activityDedupeKey(ctx), { signal: ctx.cancellationSignal });
      return { started: batch.instanceIds, launched: account.reports };
    },

    /** Tells a batch of instance workflows to go (drain and terminate, or terminate at once). */
    async signalInstances(batch: RemovalBatch): Promise<DeliveredRemovals> {
      const ctx = Context.current();
      return signalInstances(deps.temporal, batch, (done) => ctx.heartbeat(done));
    },

    /** A group's members as they exist (visibility and EC2 tags), for a run that starts without its state. */
    async rebuildMembers(request: RebuildRequest): Promise<RebuiltMembers> {
      const ctx = Context.current();
      return rebuildGroupMembers(
        { temporal: deps.temporal, ec2: deps.aws.ec2, heartbeat: (d) => ctx.heartbeat(d), beforeDescribe: () => limits.describe.take() },
        request,
      );
    },

    /** One object per entry; a retry reuses the same key (the activity's identity) and writes nothing new. */
    async writeAudit(entry: AuditEntry): Promise<AuditResult> {
      return writeAudit(objects, entry, activityDedupeKey(Context.current()));
    },
  };
}

/** Same on every attempt of one activity call, different for every other call. */
function activityDedupeKey(ctx: Context): string {
  const { activityId, workflowExecution } = ctx.info;
  return `${workflowExecution?.workflowId}/${workflowExecution?.runId}/${activityId}`;
}

/** How many items a retried attempt's last heartbeat said were done. */
function resumedCount(ctx: Context): number {
  return typeof ctx.info.heartbeatDetails === 'number' ? ctx.info.heartbeatDetails : 0;
}

/** A launching batch's last heartbeat, on a retried attempt. */
function resumedProgress(ctx: Context): BatchProgress | undefined {
  const details = ctx.info.heartbeatDetails as Partial<BatchProgress> | undefined;
  if (!details || typeof details !== 'object' || !details.launched) return undefined;
  return { ...emptyProgress(), ...details };
}
