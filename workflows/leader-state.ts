/** The leader workflow's input and the state it carries across continue-as-new (plain data). */
import type { Candidate, HandoffReason, HandoffSummary, LeaderInfo, NetworkRepair } from './decisions/leader';
import type { LeaderHandoffRequest } from './definitions';

export interface LeaderState {
  epoch: number;
  leader?: LeaderInfo;
  candidates: Record<string, Candidate>;
  nextSeq: number;
  handoffs: number;
  lastHandoff?: HandoffSummary;
  lastError?: string;
  /** The leader's network is not in place yet; retried while that epoch leads. */
  networkRepair?: NetworkRepair;
  /** A leadership that ended and has no successor yet (kept across continue-as-new). */
  lost?: LostLeadership;
  /** A handoff asked for and not yet acted on (kept across continue-as-new). */
  request?: LeaderHandoffRequest;
}

export interface LostLeadership {
  previous: LeaderInfo;
  reason: HandoffReason;
  at: string;
}

export interface LeaderWorkflowInput {
  shard: string;
  /** Heartbeat timeout of the serve and stand-by activities: how fast a dead leader is noticed. */
  heartbeatTimeoutMs?: number;
  /** Continue-as-new after this many handoffs (history grows only with handoffs). */
  maxHandoffsPerRun?: number;
  /** Continue-as-new at this many history events (tests lower it). */
  maxHistoryLength?: number;
  state?: LeaderState;
}
