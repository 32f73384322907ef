import { Context } from '@temporalio/activity';
import type { TargetGroupRef } from '../common/types';
import type { ActivityDeps } from './deps';
import { deregisterTarget, registerTarget, targetsOf } from './elbv2/targets';

/** NLB target membership: register when in service, deregister and wait on drain, repair on reconcile. */
export function createLoadBalancerActivities(deps: ActivityDeps) {
  const elbv2 = deps.aws.elbv2;
  const pollMs = deps.pollIntervalMs ?? 1000;

  return {
    async registerTargets(targetGroups: TargetGroupRef[], ec2InstanceId: string): Promise<void> {
      for (const tg of targetGroups) await registerTarget(elbv2, tg, ec2InstanceId);
    },

    /**
     * Deregisters the instance, then waits until no target group lists it any
     * more (connection draining done) or `timeoutMs` passes; returns whether it
     * drained in time. One activity, so a drain costs one step of history.
     */
    async drainTargets(targetGroups: TargetGroupRef[], ec2InstanceId: string, timeoutMs: number): Promise<boolean> {
      const ctx = Context.current();
      for (const tg of targetGroups) await deregisterTarget(elbv2, tg, ec2InstanceId);
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const still: string[] = [];
        for (const tg of targetGroups) if ((await targetsOf(elbv2, tg)).has(ec2InstanceId)) still.push(tg.arn);
        ctx.heartbeat(still);
        if (still.length === 0) return true;
        if (Date.now() >= deadline) return false;
        await ctx.sleep(Math.min(pollMs, Math.max(0, deadline - Date.now())));
      }
    },

    /** Re-registers in-service instances missing from their target groups (someone removed them by hand). */
    async ensureTargets(targetGroups: TargetGroupRef[], ec2InstanceIds: string[]): Promise<string[]> {
      const repaired: string[] = [];
      for (const tg of targetGroups) {
        const present = await targetsOf(elbv2, tg);
        for (const id of ec2InstanceIds) {
          if (present.has(id)) continue;
          await registerTarget(elbv2, tg, id);
          repaired.push(`${id}@${tg.arn}`);
        }
      }
      return repaired;
    },
  };
}
