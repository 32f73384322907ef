/** The group workflow's activity options before fleet scale, frozen with group-v1.ts. */
import { proxyActivities, type ActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../../activities';

type Only<K extends keyof Activities> = Pick<Activities, K>;

const retry = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' } as const;

const quick: ActivityOptions = { startToCloseTimeout: '30s', retry: { ...retry, maximumAttempts: 10 } };

export const configActivities = proxyActivities<Only<'loadGroupSpec'>>({
  startToCloseTimeout: '30s',
  retry: { ...retry, maximumAttempts: 5 },
});

export const ec2Activities = proxyActivities<Only<'lookupImages' | 'observeInstances'>>(quick);

export const temporalActivities = proxyActivities<Only<'startInstanceWorkflows'>>({
  startToCloseTimeout: '5m',
  heartbeatTimeout: '30s',
  retry: { ...retry, maximumInterval: '1m' },
});

export const loadBalancerActivities = proxyActivities<Only<'ensureTargets'>>(quick);
