import { Context, log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { isAwsErrorCode } from '../adapters/aws/errors';
import type { TargetGroupRef } from '../common/types';
import type { ActivityDeps } from './deps';
import { TargetDrainWatch } from '../adapters/elbv2/drain-watch';
import { deregisterTarget, registerTarget, targetsOf } from '../adapters/elbv2/targets';

/** The drain's own deadline passed (as opposed to the activity being cancelled). */
class DrainDeadline extends Error {}

/** NLB target membership: register when in service, deregister and wait on drain, repair on reconcile. */
export function createLoadBalancerActivities(deps: ActivityDeps) {
  const elbv2 = deps.aws.elbv2;
  // One per worker: every drain of the process is polled in one DescribeTargetHealth per target group.
  const drains = deps.drainWatch ?? new TargetDrainWatch({ elbv2, pollMs: deps.pollIntervalMs ?? 1000 });

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
      const still = new Set(targetGroups.map((tg) => tg.arn));
      const stop = new AbortController();
      const deadline = setTimeout(() => stop.abort(new DrainDeadline()), Math.max(0, timeoutMs));
      const cancelled = () => stop.abort(ctx.cancellationSignal.reason);
      ctx.cancellationSignal.addEventListener('abort', cancelled, { once: true });
      try {
        await Promise.all(
          targetGroups.map((tg) =>
            drains.drained(tg, ec2InstanceId, {
              signal: stop.signal,
              onLook: (state) => {
                if (state === undefined) still.delete(tg.arn);
                ctx.heartbeat([...still]);
              },
            }),
          ),
        );
        return true;
      } catch (err) {
        if (stop.signal.reason instanceof DrainDeadline) return false;
        throw err;
      } finally {
        clearTimeout(deadline);
        ctx.cancellationSignal.removeEventListener('abort', cancelled);
        // A failed look ends the drain: its waits on the other target groups end with it.
        if (!stop.signal.aborted) stop.abort();
      }
    },

    /**
     * Re-registers in-service instances missing from their target groups (someone removed them by hand).
     * Here the group's whole membership is what matters, so each target group is asked once, whole: one
     * call per pass whatever the group's size (asking about each member would take one call per chunk).
     */
    async ensureTargets(targetGroups: TargetGroupRef[], ec2InstanceIds: string[]): Promise<string[]> {
      const repaired: string[] = [];
      for (const tg of targetGroups) {
        const present = await targetsOf(elbv2, tg);
        for (const id of ec2InstanceIds) {
          if (present.has(id)) continue;
          try {
            await registerTarget(elbv2, tg, id);
          } catch (err) {
            // Not running any more (terminated behind the group's back, or expired and leaving before its report
            // arrived): nothing to repair, and the others still are. The group's observation of EC2 settles it.
            if (err instanceof ApplicationFailure && isAwsErrorCode(err.cause, 'InvalidTarget')) {
              log.warn('target not repaired: its instance is not running', { ec2InstanceId: id, targetGroup: tg.arn });
              continue;
            }
            throw err;
          }
          repaired.push(`${id}@${tg.arn}`);
        }
      }
      return repaired;
    },
  };
}
