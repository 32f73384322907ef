/**
 * Activity proxies, each typed with just the activities its callers may run, with
 * explicit timeouts and retry policies. Throttling, 5xx and eventual consistency are
 * retried with backoff; rejected requests fail at once (non-retryable).
 */
import { proxyActivities, type ActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../activities';

type Only<K extends keyof Activities> = Pick<Activities, K>;

const retry = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' } as const;

const quick: ActivityOptions = { startToCloseTimeout: '30s', retry: { ...retry, maximumAttempts: 10 } };

// ---- the instance workflow ----

export const ec2Activities = proxyActivities<Only<'selectSubnet' | 'lookupImages'>>(quick);

export const launchActivities = proxyActivities<Only<'launchInstance'>>({
  startToCloseTimeout: '2m',
  retry: { ...retry, maximumInterval: '1m', maximumAttempts: 15 },
});

/** Long polls: the heartbeat timeout notices a dead worker long before the start-to-close timeout. */
export const waitActivities = proxyActivities<Only<'awaitInstanceState'>>({
  startToCloseTimeout: '15m',
  heartbeatTimeout: '30s',
  retry: { ...retry, maximumAttempts: 5 },
});

export const auditActivities = proxyActivities<Only<'writeAudit'>>({
  startToCloseTimeout: '30s',
  retry: { ...retry, maximumInterval: '1m' },
});

export const loadBalancerActivities = proxyActivities<Only<'registerTargets'>>(quick);

/**
 * Drain waits up to the group's drain timeout (any length the config allows), so its
 * start-to-close follows it; the heartbeat still notices a dead worker quickly.
 */
export function drainActivities(drainTimeoutMs: number) {
  return proxyActivities<Only<'drainTargets'>>({
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
export const terminateActivities = proxyActivities<Only<'terminateInstance'>>({
  startToCloseTimeout: '15m',
  heartbeatTimeout: '30s',
  retry: { ...retry, maximumInterval: '2m' },
});

// ---- the garbage collector ----

export const configActivities = proxyActivities<Only<'loadShardSettings'>>({
  startToCloseTimeout: '30s',
  retry: { ...retry, maximumAttempts: 5 },
});

// ---- the group workflow ----
// A few quick attempts only: past them the group's own step backoff (workflows/group-steps.ts)
// takes over, records the error for `nstance groups`, and the pass goes on without that step.

const groupRetry = { ...retry, maximumInterval: '10s', maximumAttempts: 3 } as const;

export const groupConfigActivities = proxyActivities<Only<'loadGroupSpec'>>({ startToCloseTimeout: '30s', retry: groupRetry });

export const groupEc2Activities = proxyActivities<Only<'lookupImages' | 'observeInstances' | 'ensureTargets'>>({
  startToCloseTimeout: '2m',
  retry: groupRetry,
});

const recordOptions: ActivityOptions = { startToCloseTimeout: '5m', retry: groupRetry };

/** Instance records as runs from before record heartbeats schedule them (their commands stay as recorded). */
export const groupRecordActivities = proxyActivities<Only<'writeInstanceRecords'>>(recordOptions);

/** A batch heartbeats every page of records written: a dead worker is noticed within 30 s, and the retry goes on from the last page. */
export const heartbeatingRecordActivities = proxyActivities<Only<'writeInstanceRecords'>>({ ...recordOptions, heartbeatTimeout: '30s' });

/** Starts and removals talk to Temporal for many instances at once: heartbeats show progress, a retry resumes. */
export const groupBatchActivities = proxyActivities<Only<'startInstanceBatch' | 'signalInstances'>>({
  startToCloseTimeout: '10m',
  heartbeatTimeout: '30s',
  retry: groupRetry,
});

export const rebuildActivities = proxyActivities<Only<'rebuildMembers'>>({
  startToCloseTimeout: '10m',
  heartbeatTimeout: '1m',
  retry: groupRetry,
});
