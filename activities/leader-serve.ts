/**
 * Activities run on one worker's own task queue. While `serveAsLeader` runs, its
 * worker is the shard leader; `standBy` is how a candidate shows it is alive.
 *
 * Fencing: the serve activity heartbeats through a direct RPC (so it learns at
 * once whether Temporal accepted it) and holds the gate only for a lease shorter
 * than the heartbeat timeout, counted from when the last accepted heartbeat was
 * *sent*. A partitioned leader therefore steps down before Temporal can time it
 * out and hand the ENI to someone else; a rejected heartbeat steps down at once.
 *
 * The SDK's Core also times activities out on its own: one that records no
 * heartbeat through `ctx.heartbeat()` for the heartbeat timeout + 5 s is cancelled
 * locally (details: notFound, timedOut) and its completion is never reported, no
 * matter how many direct-RPC heartbeats the server accepted. So every accepted
 * direct heartbeat is also recorded with Core; Core's timer then means the same as
 * the server's, and it can only fire after the lease has already run out.
 */
import { Context } from '@temporalio/activity';
import { ActivityCancelledError, ActivityNotFoundError, type Client } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { MutableLeadershipGate } from '../workers/leadership/gate';

export interface ServeInput {
  shard: string;
  workerId: string;
  epoch: number;
  /** The workflow's heartbeat timeout; the lease is shorter. */
  heartbeatTimeoutMs: number;
}

export type LostReason = 'not-found' | 'lease-lost' | 'stand-by-dropped' | 'cancelled-by-sdk';

export interface ServeDeps {
  gate: MutableLeadershipGate;
  client: Client;
  workerId: string;
  /** Told when Temporal no longer knows this worker's activity: re-announce as a candidate. */
  onDropped?: (reason: LostReason) => void;
  /** Called when a serve or stand-by activity starts; the returned function when it ends. */
  onActivity?: () => () => void;
  log?: (line: string) => void;
}

/** Renew often; give up well before the workflow's heartbeat timeout. */
export function leaseTiming(heartbeatTimeoutMs: number): { leaseMs: number; renewMs: number } {
  const leaseMs = Math.max(500, Math.min(heartbeatTimeoutMs - 1000, Math.floor(heartbeatTimeoutMs * 0.75)));
  return { leaseMs, renewMs: Math.max(100, Math.floor(leaseMs / 5)) };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e: unknown) => (clearTimeout(t), reject(e)),
    );
  });
}

/** Resolves after `ms`, or as soon as `signal` aborts (a handoff must not wait a renew interval). */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => (clearTimeout(t), signal.removeEventListener('abort', done), resolve());
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}

export function createLeaderServeActivities(deps: ServeDeps) {
  const log = deps.log ?? (() => undefined);
  return {
    async serveAsLeader(input: ServeInput): Promise<void> {
      const ctx = Context.current();
      if (input.workerId !== deps.workerId) {
        throw ApplicationFailure.create({ type: 'WrongWorker', nonRetryable: true, message: `serve for ${input.workerId} reached ${deps.workerId}` });
      }
      const finished = deps.onActivity?.();
      try {
        await serve(ctx, input);
      } finally {
        finished?.();
      }
    },

    /** Runs until the workflow cancels it (this worker becomes leader or leaves) or Temporal drops it. */
    async standBy(input: { shard: string; workerId: string; heartbeatTimeoutMs: number }): Promise<void> {
      const ctx = Context.current();
      const { renewMs } = leaseTiming(input.heartbeatTimeoutMs);
      const finished = deps.onActivity?.();
      try {
        for (;;) {
          ctx.heartbeat();
          await ctx.sleep(renewMs);
        }
      } catch (err) {
        const why = ctx.cancellationDetails;
        if (why && (why.notFound || why.timedOut)) deps.onDropped?.('stand-by-dropped');
        throw err;
      } finally {
        finished?.();
      }
    },
  };

  async function serve(ctx: Context, input: ServeInput): Promise<void> {
    const { leaseMs, renewMs } = leaseTiming(input.heartbeatTimeoutMs);
    const hold = deps.gate.acquire(input.epoch);
    log(`leader: serving shard ${input.shard} at epoch ${input.epoch}`);
    let leaseLost = false;
    let lease: NodeJS.Timeout | undefined;
    const renewLease = (sentAt: number) => {
      clearTimeout(lease);
      lease = setTimeout(() => {
        leaseLost = true;
        if (deps.gate.release(hold)) log(`leader: lease lost at epoch ${input.epoch} (no heartbeat accepted for ${leaseMs} ms): stopped serving`);
      }, Math.max(0, sentAt + leaseMs - Date.now()));
    };
    // The task was just delivered, so Temporal knew us alive no earlier than now.
    renewLease(Date.now());
    try {
      for (;;) {
        if (leaseLost) {
          deps.onDropped?.('lease-lost');
          throw ApplicationFailure.create({ type: 'LeaseLost', nonRetryable: true, message: `epoch ${input.epoch}: no heartbeat accepted for ${leaseMs} ms` });
        }
        if (ctx.cancellationSignal.aborted) {
          // Stop serving first, whatever the reason; then tell the workflow (and the
          // participant) why, so a worker that keeps running is a candidate again.
          const released = deps.gate.release(hold);
          const why = ctx.cancellationDetails;
          if (why?.cancelRequested) {
            log(`leader: handed off at epoch ${input.epoch}: stopped serving`);
            throw new CancelledFailure('leadership handed off');
          }
          if (why?.workerShutdown) {
            throw ApplicationFailure.create({ type: 'WorkerShutdown', nonRetryable: true, message: `worker ${deps.workerId} is shutting down` });
          }
          // Timed out or dropped by Core (notFound/timedOut), paused or reset: the process lives on.
          log(`leader: activity cancelled by the SDK at epoch ${input.epoch} (${JSON.stringify(why ?? {})}): stopped serving`);
          // Not found is what the old run's activity meets after a continue-as-new, while the new run
          // restarts serving here: the participant waits for that before announcing again.
          if (released) deps.onDropped?.(why?.notFound && !why.timedOut ? 'not-found' : 'cancelled-by-sdk');
          throw ApplicationFailure.create({ type: 'LeaseLost', nonRetryable: true, message: `epoch ${input.epoch}: activity cancelled by the SDK (${JSON.stringify(why ?? {})})` });
        }
        const sentAt = Date.now();
        try {
          await withTimeout(deps.client.activity.heartbeat(ctx.info.taskToken, { epoch: input.epoch }), leaseMs);
          if (!leaseLost) renewLease(sentAt);
          // Keeps Core's local heartbeat timer from cancelling us (see the top of this file).
          ctx.heartbeat({ epoch: input.epoch });
        } catch (err) {
          if (err instanceof ActivityCancelledError) {
            // A graceful handoff: stop serving before the workflow moves the ENI.
            deps.gate.release(hold);
            log(`leader: handed off at epoch ${input.epoch}: stopped serving`);
            throw new CancelledFailure('leadership handed off');
          }
          if (err instanceof ActivityNotFoundError) {
            const released = deps.gate.release(hold);
            if (released) log(`leader: heartbeat rejected at epoch ${input.epoch}: stopped serving`);
            // Not when a newer run of the workflow already restarted us at this epoch.
            if (released) deps.onDropped?.('not-found');
            throw ApplicationFailure.create({ type: 'LeaseLost', nonRetryable: true, message: `epoch ${input.epoch}: heartbeat rejected (not found)` });
          }
          // Unreachable or slow: keep trying until the lease runs out.
        }
        await pause(renewMs, ctx.cancellationSignal);
      }
    } finally {
      clearTimeout(lease);
      deps.gate.release(hold);
    }
  }
}

export type LeaderServeActivities = ReturnType<typeof createLeaderServeActivities>;
