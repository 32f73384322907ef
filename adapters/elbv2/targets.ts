import {
  DeregisterTargetsCommand,
  DescribeTargetHealthCommand,
  RegisterTargetsCommand,
  type ElasticLoadBalancingV2Client,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import type { TargetGroupRef } from '../../common/types';
import { sharedRequest } from '../aws/cancellation';
import { isAwsErrorCode, withAwsErrors } from '../aws/errors';

/** Instance ids registered in a target group (any health state, draining included). */
export async function targetsOf(elbv2: ElasticLoadBalancingV2Client, tg: TargetGroupRef): Promise<Map<string, string>> {
  const out = await withAwsErrors(`DescribeTargetHealth ${tg.arn}`, () =>
    elbv2.send(new DescribeTargetHealthCommand({ TargetGroupArn: tg.arn })),
  );
  const targets = new Map<string, string>();
  for (const d of out.TargetHealthDescriptions ?? []) {
    if (d.Target?.Id && (d.Target.Port === undefined || d.Target.Port === tg.port)) {
      targets.set(d.Target.Id, d.TargetHealth?.State ?? 'unknown');
    }
  }
  return targets;
}

/**
 * The health state of each of these instances in the target group, asked about them alone (Targets),
 * not the whole group. A target that is not registered is absent: ELBv2 answers an explicitly asked
 * one as "unused" with reason Target.NotRegistered (a finished drain), or leaves it out.
 */
export async function targetStates(elbv2: Pick<ElasticLoadBalancingV2Client, 'send'>, tg: TargetGroupRef, ec2InstanceIds: string[]): Promise<Map<string, string>> {
  const states = new Map<string, string>();
  if (ec2InstanceIds.length === 0) return states;
  const asked = ec2InstanceIds.length === 1 ? ec2InstanceIds[0] : `(${ec2InstanceIds.length} targets)`;
  // Shared by every drain of the worker: a deadline of its own, no one drain's cancellation.
  const out = await sharedRequest(`DescribeTargetHealth ${asked}:${tg.port} in ${tg.arn}`, (options) =>
    elbv2.send(new DescribeTargetHealthCommand({ TargetGroupArn: tg.arn, Targets: ec2InstanceIds.map((Id) => ({ Id, Port: tg.port })) }), options),
  );
  for (const d of out.TargetHealthDescriptions ?? []) {
    const id = d.Target?.Id;
    if (!id || (d.Target?.Port !== undefined && d.Target.Port !== tg.port)) continue;
    if (d.TargetHealth?.State === 'unused' && d.TargetHealth.Reason === 'Target.NotRegistered') continue;
    // Several answers for one target: the one that says it is still there wins.
    if (!states.has(id) || states.get(id) === 'unused') states.set(id, d.TargetHealth?.State ?? 'unknown');
  }
  return states;
}

export async function registerTarget(elbv2: ElasticLoadBalancingV2Client, tg: TargetGroupRef, ec2InstanceId: string): Promise<void> {
  await withAwsErrors(`RegisterTargets ${ec2InstanceId}:${tg.port} in ${tg.arn}`, () =>
    elbv2.send(new RegisterTargetsCommand({ TargetGroupArn: tg.arn, Targets: [{ Id: ec2InstanceId, Port: tg.port }] })),
  );
}

/** Idempotent: a target that is already gone counts as deregistered. */
export async function deregisterTarget(elbv2: ElasticLoadBalancingV2Client, tg: TargetGroupRef, ec2InstanceId: string): Promise<void> {
  try {
    await elbv2.send(new DeregisterTargetsCommand({ TargetGroupArn: tg.arn, Targets: [{ Id: ec2InstanceId, Port: tg.port }] }));
  } catch (err) {
    if (isAwsErrorCode(err, 'InvalidTarget', 'TargetNotFound')) return;
    await withAwsErrors(`DeregisterTargets ${ec2InstanceId} from ${tg.arn}`, () => Promise.reject(err));
  }
}
