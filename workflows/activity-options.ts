import { proxyActivities, type ActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../activities';

/** Throttling, 5xx and eventual consistency are retried with backoff; rejected requests fail at once (non-retryable). */
const retry = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' } as const;

const quick: ActivityOptions = { startToCloseTimeout: '30s', retry: { ...retry, maximumAttempts: 10 } };

export const configActivities = proxyActivities<Activities>({
  startToCloseTimeout: '30s',
  retry: { ...retry, maximumAttempts: 5 },
});

export const ec2Activities = proxyActivities<Activities>(quick);

export const launchActivities = proxyActivities<Activities>({
  startToCloseTimeout: '2m',
  retry: { ...retry, maximumInterval: '1m', maximumAttempts: 15 },
});

/** Long polls: the heartbeat timeout notices a dead worker long before the start-to-close timeout. */
export const waitActivities = proxyActivities<Activities>({
  startToCloseTimeout: '15m',
  heartbeatTimeout: '30s',
  retry: { ...retry, maximumAttempts: 5 },
});

export const auditActivities = proxyActivities<Activities>({
  startToCloseTimeout: '30s',
  retry: { ...retry, maximumInterval: '1m' },
});

export const temporalActivities = proxyActivities<Activities>({
  startToCloseTimeout: '5m',
  heartbeatTimeout: '30s',
  retry: { ...retry, maximumInterval: '1m' },
});

export const loadBalancerActivities = proxyActivities<Activities>(quick);

/**
 * Drain waits up to the group's drain timeout (any length the config allows), so its
 * start-to-close follows it; the heartbeat still notices a dead worker quickly.
 */
export function drainActivities(drainTimeoutMs: number) {
  return proxyActivities<Activities>({
    startToCloseTimeout: drainTimeoutMs + 5 * 60_000,
    heartbeatTimeout: '30s',
    retry: { ...retry, maximumAttempts: 5 },
  });
}

/**
 * Terminating is retried until it succeeds (rejected requests still fail at once):
 * an instance workflow that gave up here would leave its instance running and its
 * group waiting for a member that never reports gone.
 */
export const terminateActivities = proxyActivities<Activities>({
  startToCloseTimeout: '15m',
  heartbeatTimeout: '30s',
  retry: { ...retry, maximumInterval: '2m' },
});
