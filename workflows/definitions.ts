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
