import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { ConfigValidationError, resolveGroup, shardSettings } from '../common/config';
import type { AuditEntry, GroupRef, GroupSpecResult, InstanceWorkflowInput } from '../common/types';
import type { ActivityDeps } from './deps';
import { buildGroupSpec } from './group-spec';
import { writeAudit, type AuditResult } from './s3/audit';
import { ShardConfigStore } from './s3/config-store';
import { ObjectStore } from './s3/objects';
import { startInstanceWorkflows } from './temporal/start-instances';

/** Config, audit and workflow-start activities of the group workflow. */
export function createGroupActivities(deps: ActivityDeps) {
  const objects = new ObjectStore({ s3: deps.aws.s3, bucket: deps.bucket });

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

    /** What the garbage collector needs from config: cluster id, interval and grace. */
    async loadShardSettings(shard: string): Promise<{ clusterId: string; gcIntervalMs: number; gcGraceMs: number }> {
      const stored = await new ShardConfigStore(objects, shard).readConfig();
      if (!stored) throw ApplicationFailure.create({ type: 'ConfigMissing', message: `no config for shard "${shard}"` });
      const settings = shardSettings(stored.config);
      return { clusterId: stored.config.cluster.id, gcIntervalMs: settings.gc.intervalMs, gcGraceMs: settings.gc.registrationTimeoutMs };
    },

    async startInstanceWorkflows(inputs: InstanceWorkflowInput[], paceMs: number): Promise<string[]> {
      const ctx = Context.current();
      const resumeAt = typeof ctx.info.heartbeatDetails === 'number' ? ctx.info.heartbeatDetails : 0;
      return startInstanceWorkflows(deps.temporal, inputs, paceMs, (count) => ctx.heartbeat(count), resumeAt);
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
