/**
 * Fencing for the agent API's writes. A request is served under the leadership
 * it started with: its epoch is captured once, and every side effect (spending
 * a nonce, signing and logging a certificate, signalling a workflow) checks
 * again that this worker still leads at that epoch. A worker deposed while a
 * request was awaiting AWS or Temporal therefore stops at its next step and
 * answers 503, instead of finishing writes the new leader knows nothing about.
 */
import type { LeadershipGate } from '../leadership/gate';

export interface LeaderFence {
  /** The epoch the request started under (stamped on what it writes); undefined for a gate without epochs. */
  readonly epoch: number | undefined;
  /** Throws NotLeaderError unless this worker still leads at `epoch`. */
  check(): void;
}

/** Throws NotLeaderError when this worker does not lead now; otherwise fences on the current epoch. */
export function leaderFence(gate: LeadershipGate): LeaderFence {
  gate.assertLeader();
  const epoch = gate.state.epoch;
  return { epoch, check: () => gate.assertLeader(epoch) };
}
