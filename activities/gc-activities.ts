import { DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError } from '@temporalio/client';
import { instanceWorkflowId, TAG } from '../common/names';
import type { ActivityDeps } from './deps';
import { withAwsErrors } from './aws/errors';
import { defaultEc2RateLimits } from './aws/token-bucket';
import { terminateInstance } from './ec2/instances';
import { writeAudit } from './s3/audit';
import { ObjectStore } from './s3/objects';

export interface GcRequest {
  shard: string;
  clusterId: string;
  /** An instance younger than this is never collected: its workflow may not be visible yet. */
  graceMs: number;
  at: string;
}

export interface Orphan {
  ec2InstanceId: string;
  instanceId?: string;
  launchedAt?: string;
  why: string;
}

/** The garbage collector's one activity: find tagged instances no live workflow owns, and terminate them. */
export function createGcActivities(deps: ActivityDeps) {
  const limits = deps.ec2Limits ?? defaultEc2RateLimits();
  const objects = new ObjectStore({ s3: deps.aws.s3, bucket: deps.bucket });

  async function owned(shard: string, instanceId: string | undefined): Promise<boolean> {
    if (!instanceId) return false;
    try {
      const description = await deps.temporal.workflow.getHandle(instanceWorkflowId(shard, instanceId)).describe();
      return description.status.name === 'RUNNING';
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return false;
      throw err;
    }
  }

  return {
    async collectGarbage(request: GcRequest): Promise<Orphan[]> {
      const ctx = Context.current();
      await limits.describe.take();
      const out = await withAwsErrors('DescribeInstances for garbage collection', () =>
        deps.aws.ec2.send(
          new DescribeInstancesCommand({
            Filters: [
              { Name: `tag:${TAG.clusterId}`, Values: [request.clusterId] },
              { Name: `tag:${TAG.shard}`, Values: [request.shard] },
              { Name: `tag:${TAG.managed}`, Values: ['true'] },
              { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] },
            ],
          }),
        ),
      );
      const now = Date.now();
      const collected: Orphan[] = [];
      for (const instance of (out.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
        const ec2InstanceId = instance.InstanceId;
        if (!ec2InstanceId) continue;
        const launched = instance.LaunchTime?.getTime() ?? now;
        if (now - launched < request.graceMs) continue;
        const instanceId = instance.Tags?.find((t) => t.Key === TAG.instanceId)?.Value;
        if (await owned(request.shard, instanceId)) continue;
        ctx.heartbeat(ec2InstanceId);
        const orphan: Orphan = {
          ec2InstanceId,
          instanceId,
          launchedAt: instance.LaunchTime?.toISOString(),
          why: instanceId ? `no running workflow owns ${instanceId}` : `no ${TAG.instanceId} tag`,
        };
        await terminateInstance({ ec2: deps.aws.ec2, limits }, ec2InstanceId);
        await writeAudit(
          objects,
          {
            shard: request.shard,
            action: 'gc.terminate',
            actor: 'garbage-collector',
            at: request.at,
            instanceIds: instanceId ? [instanceId] : [],
            ec2InstanceIds: [ec2InstanceId],
            details: { why: orphan.why, launchedAt: orphan.launchedAt },
          },
          `gc/${request.shard}/${ec2InstanceId}`,
        );
        collected.push(orphan);
      }
      return collected;
    },
  };
}
