import { DescribeInstancesCommand, type Instance } from '@aws-sdk/client-ec2';
import { Context } from '@temporalio/activity';
import { instanceWorkflowId, TAG } from '../common/names';
import type { ActivityDeps } from './deps';
import { withAwsErrors } from './aws/errors';
import { defaultEc2RateLimits } from './aws/token-bucket';
import { terminateInstance } from './ec2/instances';
import { writeAudit } from './s3/audit';
import { ObjectStore } from './s3/objects';
import { latestInstanceRun } from './temporal/workflow-status';

export interface GcRequest {
  shard: string;
  clusterId: string;
  /**
   * An instance younger than this is never collected, owned or not: a margin for a just-launched
   * instance on top of the ownership check (garbage_collection.registration_timeout).
   */
  graceMs: number;
  at: string;
}

export interface Orphan {
  ec2InstanceId: string;
  instanceId?: string;
  launchedAt?: string;
  why: string;
}

/** EC2's largest DescribeInstances page (it accepts 5 to 1000). */
export const GC_DESCRIBE_PAGE_SIZE = 1000;

/** The garbage collector's one activity: find tagged instances no live workflow owns, and terminate them. */
export function createGcActivities(deps: ActivityDeps) {
  const limits = deps.ec2Limits ?? defaultEc2RateLimits();
  const objects = new ObjectStore({ s3: deps.aws.s3, bucket: deps.bucket });
  const pageSize = deps.gcDescribePageSize ?? GC_DESCRIBE_PAGE_SIZE;

  /**
   * Owned means: the instance's workflow (found by its nstance:instance-id tag) is running, and runs
   * this EC2 instance. The workflow is started before RunInstances and describe reads it
   * consistently, so this holds from the instant the instance exists; until the workflow has
   * recorded its EC2 id (NstanceInstanceId) any instance with its tag counts as its own. After
   * that, another instance with the same tag is a duplicate (a launch that went through twice).
   */
  async function whyNotOwned(shard: string, instanceId: string | undefined, ec2InstanceId: string): Promise<string | undefined> {
    if (!instanceId) return `no ${TAG.instanceId} tag`;
    const run = await latestInstanceRun(deps.temporal, instanceWorkflowId(shard, instanceId));
    if (run.status !== 'RUNNING') return `no running workflow owns ${instanceId}`;
    if (run.ec2InstanceId && run.ec2InstanceId !== ec2InstanceId) return `a duplicate: ${instanceId}'s workflow runs ${run.ec2InstanceId}`;
    return undefined;
  }

  /**
   * Every live instance tagged for the shard, all pages. The listing is finished before anything is
   * terminated: terminating changes the filtered result set that the next page's token points into.
   */
  async function taggedInstances(request: GcRequest, heartbeat: (details: string) => void): Promise<Instance[]> {
    const found: Instance[] = [];
    let token: string | undefined;
    do {
      // Each page is a request of its own against EC2's Describe bucket.
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
            MaxResults: pageSize,
            NextToken: token,
          }),
        ),
      );
      found.push(...(out.Reservations ?? []).flatMap((r) => r.Instances ?? []));
      token = out.NextToken || undefined;
      heartbeat(`listed ${found.length} instances`);
    } while (token);
    return found;
  }

  return {
    async collectGarbage(request: GcRequest): Promise<Orphan[]> {
      const ctx = Context.current();
      const instances = await taggedInstances(request, (d) => ctx.heartbeat(d));
      const now = Date.now();
      const collected: Orphan[] = [];
      for (const instance of instances) {
        const ec2InstanceId = instance.InstanceId;
        if (!ec2InstanceId) continue;
        const launched = instance.LaunchTime?.getTime() ?? now;
        if (now - launched < request.graceMs) continue;
        const instanceId = instance.Tags?.find((t) => t.Key === TAG.instanceId)?.Value;
        const why = await whyNotOwned(request.shard, instanceId, ec2InstanceId);
        if (!why) continue;
        ctx.heartbeat(ec2InstanceId);
        const orphan: Orphan = { ec2InstanceId, instanceId, launchedAt: instance.LaunchTime?.toISOString(), why };
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
