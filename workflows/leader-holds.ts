/**
 * The leader workflow's activities: the long serve-as-leader / stand-by holds on
 * each worker's own queue, and the shard-queue activities that move the leader
 * network. Workflow code (deterministic): options and how a hold ended, no I/O.
 */
import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  proxyActivities,
  TimeoutFailure,
} from '@temporalio/workflow';
import type { LeaderActivities } from '../activities/leader';
import type { MoveResult } from '../adapters/ec2/network-interfaces';
import type { LeaderServeActivities } from '../activities/leader-serve';
import type { Activities } from '../activities';
import { errorMessage, rootFailure } from '../common/failures';
import { workerTaskQueue } from '../common/names';
import type { Candidate, ServeEnd } from './decisions/leader';

export const MOVE_TIMEOUT_MS = 30_000;

export const leaderActivities = proxyActivities<LeaderActivities>({
  startToCloseTimeout: '1m',
  // Short: a worker killed while moving the ENI must not hold up the failover.
  heartbeatTimeout: '3s',
  retry: { initialInterval: '300ms', backoffCoefficient: 2, maximumInterval: '5s', maximumAttempts: 8, nonRetryableErrorTypes: ['StaleEpoch', 'AwsRequestRejected', 'ConfigInvalid'] },
});
// Reading the newest epoch before a fresh run elects anyone: retried until S3/EC2 answer,
// because electing at a lower epoch would only produce handoffs the fence refuses.
export const epochActivities = proxyActivities<LeaderActivities>({
  startToCloseTimeout: '1m',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
});
export const auditActivities = proxyActivities<Pick<Activities, 'writeAudit'>>({ startToCloseTimeout: '30s', retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 10 } });

export interface Held {
  workerId: string;
  epoch: number;
  generation: number;
  scope: CancellationScope;
  done: Promise<void>;
  ended?: ServeEnd;
}

export type HoldKind = 'serve' | 'standBy';

/**
 * Starts a serve-as-leader or stand-by activity for a candidate on its own task
 * queue, in its own cancellation scope; `ended` is set when it ends, however.
 */
export function holdActivity(ctx: { shard: string; heartbeatTimeoutMs: number }, kind: HoldKind, c: Candidate, epoch: number): Held {
  const { shard, heartbeatTimeoutMs } = ctx;
  const acts = proxyActivities<LeaderServeActivities>({
    taskQueue: workerTaskQueue(shard, c.workerId),
    // A candidate that never picks its task up is dead (or its queue is not polled).
    scheduleToStartTimeout: heartbeatTimeoutMs * 2,
    startToCloseTimeout: '3650d',
    heartbeatTimeout: heartbeatTimeoutMs,
    retry: { maximumAttempts: 1 },
    // Graceful handoff waits until the old leader confirms it stopped serving.
    cancellationType: kind === 'serve' ? ActivityCancellationType.WAIT_CANCELLATION_COMPLETED : ActivityCancellationType.TRY_CANCEL,
  });
  const scope = new CancellationScope();
  const held: Held = { workerId: c.workerId, epoch, generation: c.generation, scope, done: Promise.resolve() };
  const args = { shard, workerId: c.workerId, epoch, heartbeatTimeoutMs };
  held.done = scope
    .run(() => (kind === 'serve' ? acts.serveAsLeader(args) : acts.standBy(args)))
    .then(
      () => void (held.ended = { kind: 'completed' }),
      (err: unknown) => void (held.ended = serveEnd(err)),
    );
  return held;
}

export type Placement =
  | { kind: 'placed'; moved?: MoveResult; note?: string }
  | { kind: 'failed'; error: string }
  | { kind: 'abandoned'; why: string };

export function serveEnd(err: unknown): ServeEnd {
  const cause = rootFailure(err);
  if (cause instanceof CancelledFailure) return { kind: 'cancelled' };
  if (cause instanceof TimeoutFailure) return { kind: 'timeout', timeoutType: String(cause.timeoutType) };
  if (cause instanceof ApplicationFailure) return { kind: 'failed', failureType: cause.type ?? undefined };
  return { kind: 'failed' };
}

export { errorMessage };
