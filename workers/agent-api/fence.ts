/**
 * Fencing for the agent API's writes. A request is served under the leadership
 * it started with: its epoch is captured once, and every side effect (spending
 * a nonce, signing and logging a certificate, signalling a workflow) checks
 * again that this worker still leads at that epoch. A worker deposed while a
 * request was awaiting AWS or Temporal therefore stops at its next step and
 * answers 503, instead of finishing writes the new leader knows nothing about.
 *
 * The fence also carries the request's own lifetime (`signal`): aborted when the
 * agent hangs up or the request passes its deadline. Work for an agent that has
 * gone is wasted at best; under load it holds a registration slot that agents
 * still waiting need, and their retries pile on top (congestion collapse).
 */
import type { LeadershipGate } from '../leadership/gate';

export interface LeaderFence {
  /** The epoch the request started under (stamped on what it writes); undefined for a gate without epochs. */
  readonly epoch: number | undefined;
  /** Aborted once nobody waits for the answer any more: passed to every AWS and Temporal call the request makes. */
  readonly signal: AbortSignal;
  /** Throws NotLeaderError unless this worker still leads at `epoch`; RequestAbandonedError once `signal` is aborted. */
  check(): void;
}

/** The request was given up (its agent hung up, or it ran past its deadline) before this step. */
export class RequestAbandonedError extends Error {
  constructor(readonly reason: 'hung-up' | 'deadline', message: string) {
    super(message);
    this.name = 'RequestAbandonedError';
  }
}

/** Throws NotLeaderError when this worker does not lead now; otherwise fences on the current epoch. */
export function leaderFence(gate: LeadershipGate, signal: AbortSignal = new AbortController().signal): LeaderFence {
  gate.assertLeader();
  const epoch = gate.state.epoch;
  return {
    epoch,
    signal,
    check: () => {
      gate.assertLeader(epoch);
      if (signal.aborted) throw abandonment(signal);
    },
  };
}

/** The RequestAbandonedError an aborted request signal stands for (its reason, when it is one). */
export function abandonment(signal: AbortSignal): RequestAbandonedError {
  const reason: unknown = signal.reason;
  return reason instanceof RequestAbandonedError ? reason : new RequestAbandonedError('hung-up', 'the request was abandoned');
}
