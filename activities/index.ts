import { defaultEc2RateLimits } from '../adapters/aws/token-bucket';
import type { ActivityDeps } from './deps';
import { createGcActivities } from './gc-activities';
import { createGroupActivities } from './group-activities';
import { createInstanceActivities } from './instance-activities';
import { createInstanceRecordActivities } from './instance-record-activities';
import { createLoadBalancerActivities } from './load-balancer-activities';
import { leaderActivitiesFor } from './leader';
import { createSecretsActivities } from './secrets-activities';

export type { ActivityDeps } from './deps';
export { clientTokenFor, type InstanceTarget } from './instance-activities';

/** Activities are closures over injected clients, so tests point them at the emulator. */
export function createActivities(options: ActivityDeps) {
  // One set of EC2 buckets for every activity of the process (instances and garbage collection alike).
  const deps: ActivityDeps = { ...options, ec2Limits: options.ec2Limits ?? defaultEc2RateLimits() };
  return {
    ...createGroupActivities(deps),
    ...createInstanceActivities(deps),
    ...createInstanceRecordActivities(deps),
    ...createLoadBalancerActivities(deps),
    ...createGcActivities(deps),
    ...leaderActivitiesFor(deps),
    ...createSecretsActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
