/**
 * Signals, queries and updates of every workflow, in one module shared by the
 * workflows and the clients that talk to them.
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { GroupStatus, InstanceUpdate, Member } from '../common/types';

export interface ReconcileRequest {
  /** Why: 'config-applied', 'scale-requested', 'manual'. */
  reason: string;
  actor: string;
}

export interface TerminateRequest {
  reason: string;
  actor: string;
}

/** Config changed (apply, scale): reload the spec and reconcile now. */
export const reconcileSignal = defineSignal<[ReconcileRequest]>('reconcile');
/** An instance workflow reports a transition. */
export const instanceUpdateSignal = defineSignal<[InstanceUpdate]>('instanceUpdate');
export const groupStatusQuery = defineQuery<GroupStatus>('status');

export const terminateSignal = defineSignal<[TerminateRequest]>('terminate');
export const instanceStatusQuery = defineQuery<Member | InstanceUpdate>('status');

/** Sent by the agent API (on the leader) once an agent registered with its nonce. */
export interface AgentRegistration {
  instanceId: string;
  certificateSerial: string;
  reportedIp?: string;
  hostname?: string;
  at: string;
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
}
export const instanceHealthSignal = defineSignal<[HealthTransition]>('instanceHealth');
