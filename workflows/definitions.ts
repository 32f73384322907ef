/**
 * Signals, queries and updates of every workflow, in one module shared by the
 * workflows and the clients that talk to them.
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { GroupStatus, InstanceUpdate, Member, StatusPage } from '../common/types';
import type { LeaderStatus } from './decisions/leader';

export interface ReconcileRequest {
  /** Why: 'config-applied', 'scale-requested', 'manual'. */
  reason: string;
  actor: string;
}

export interface TerminateRequest {
  reason: string;
  actor: string;
  /** Deregister from load balancers and wait for draining first (default true). */
  drain?: boolean;
  /** More about the reason (which fields drifted), recorded in the audit log. */
  detail?: string;
}

/** An operator's request about one instance, handled by its group. */
export interface InstanceCommand {
  instanceId: string;
  action: 'drain' | 'replace';
  actor: string;
}

/** Config changed (apply, scale): reload the spec and reconcile now. */
export const reconcileSignal = defineSignal<[ReconcileRequest]>('reconcile');
/** An instance workflow reports a transition. */
export const instanceUpdateSignal = defineSignal<[InstanceUpdate]>('instanceUpdate');
/** Counts, and a page of members (by default the oldest 200; `{ limit: 0 }` for counts only). */
export const groupStatusQuery = defineQuery<GroupStatus, [StatusPage?]>('status');
export const instanceCommandSignal = defineSignal<[InstanceCommand]>('instanceCommand');

export const terminateSignal = defineSignal<[TerminateRequest]>('terminate');
export const instanceStatusQuery = defineQuery<Member | InstanceUpdate>('status');

/** Sent by the agent API (on the leader) once an agent registered with its nonce. */
export interface AgentRegistration {
  instanceId: string;
  certificateSerial: string;
  reportedIp?: string;
  hostname?: string;
  at: string;
  /** See HealthTransition.leaderEpoch. */
  leaderEpoch?: number;
}
export const agentRegisteredSignal = defineSignal<[AgentRegistration]>('agentRegistered');

/**
 * Health transitions only (never the periodic reports themselves, which stay
 * in the leader's memory): healthy after unhealthy, unhealthy after 3 missed
 * intervals, or a termination notice (spot) with its deadline.
 */
export interface HealthTransition {
  instanceId: string;
  status: 'healthy' | 'unhealthy' | 'termination-notice';
  reason: string;
  at: string;
  deadline?: string;
  /**
   * The leadership epoch of the agent API that sent it. An instance workflow ignores a
   * signal from an older epoch than one it already heard from: that sender was deposed
   * and its view of the agent is stale. Absent in signals sent before epochs were
   * stamped, which are accepted.
   */
  leaderEpoch?: number;
}
export const instanceHealthSignal = defineSignal<[HealthTransition]>('instanceHealth');

// ---- leader workflow (one per shard) ----

/** A worker offering to lead: sent with signalWithStart on startup, and again if Temporal dropped it. */
export interface CandidateAnnouncement {
  workerId: string;
  ec2InstanceId?: string;
  agentAddress?: string;
  at: string;
}
/** `nstance leader handoff [--to]`: a graceful handoff (the old leader stops serving before the ENI moves). */
export interface LeaderHandoffRequest {
  to?: string;
  reason: string;
  actor: string;
}
/** A worker stepping down; `leaving` when it is shutting down (never choose it again until it re-announces). */
export interface LeaderResignation {
  workerId: string;
  leaving: boolean;
  reason: string;
}
export const leaderCandidateSignal = defineSignal<[CandidateAnnouncement]>('leaderCandidate');
export const leaderHandoffSignal = defineSignal<[LeaderHandoffRequest]>('leaderHandoff');
export const leaderResignSignal = defineSignal<[LeaderResignation]>('leaderResign');
export const leaderStatusQuery = defineQuery<LeaderStatus>('leaderStatus');
