/** The frozen state of the group workflow before fleet scale (see group-v1.ts). */
import type { GroupRef, GroupSpec, GroupStatus, InstanceUpdate, Member, StatusPage } from '../../common/types';
import { currentDetails, statusOf as sharedStatusOf } from '../group-status';
import type { CachedImage } from '../decisions/images';
import { creationBackoffMs } from './reconcile-v1';

export interface GroupState {
  members: Record<string, Member>;
  nextSeq: number;
  spec?: GroupSpec;
  /** The group was removed from config: drain it to zero, then finish. */
  removed: boolean;
  failures: number;
  backoffUntil?: number;
  lastError?: string;
  images: Record<string, CachedImage>;
  /**
   * Members forgotten before their workflow said "terminated" (EC2 showed them gone, or their
   * workflow had closed): a late update from one must not bring it back. The newest few only.
   */
  forgotten?: string[];
}

const FORGOTTEN_KEPT = 200;

/** Drops a member the group will not hear "terminated" from, and remembers that it did. */
export function forget(state: GroupState, instanceId: string): void {
  delete state.members[instanceId];
  state.forgotten = [...(state.forgotten ?? []), instanceId].slice(-FORGOTTEN_KEPT);
}

export function initialGroupState(): GroupState {
  return { members: {}, nextSeq: 1, removed: false, failures: 0, images: {} };
}

export function applyUpdate(state: GroupState, update: InstanceUpdate, now: number): void {
  const known = state.members[update.instanceId];
  if (update.phase === 'terminated' || update.phase === 'failed') {
    delete state.members[update.instanceId];
    if (update.phase === 'failed' && !known?.leaving) {
      state.failures++;
      state.backoffUntil = now + creationBackoffMs(state.failures);
      state.lastError = `instance ${update.instanceId}: ${update.error ?? 'failed'}`;
    }
    return;
  }
  // A late report from a member already forgotten: it is gone, whatever the report says.
  if (!known && state.forgotten?.includes(update.instanceId)) return;
  // A launch still trying (no capacity yet) reports why, so `nstance groups` can say it.
  if (update.phase === 'provisioning' && update.error) state.lastError = `instance ${update.instanceId}: ${update.error}`;
  if (update.phase === 'in-service' || (update.phase === 'running' && known?.phase === 'provisioning')) {
    state.failures = 0;
    state.backoffUntil = undefined;
    if (state.lastError?.startsWith('instance ')) state.lastError = undefined;
  }
  state.members[update.instanceId] = {
    ...(known ?? { seq: state.nextSeq++, createdAt: new Date(now).toISOString() }),
    ...update,
    leaving: known?.leaving,
    lost: known?.lost,
    replaceRequested: known?.replaceRequested,
    replacing: known?.replacing,
  };
}

export function statusOf(ref: GroupRef, state: GroupState, now: number, page?: StatusPage): GroupStatus {
  return sharedStatusOf(ref, { members: Object.values(state.members), desired: desiredSize(state), configured: state.spec !== undefined && !state.removed, lastError: state.lastError, backoffUntil: state.backoffUntil }, now, page);
}

export function desiredSize(state: GroupState): number {
  return state.removed || !state.spec ? 0 : state.spec.size;
}

export { currentDetails };

/** The innermost message: an ActivityFailure's own message only says "activity failed". */
export function errorMessage(err: unknown): string {
  let e: unknown = err;
  let message = String(err);
  while (e instanceof Error) {
    message = e.message || message;
    e = (e as { cause?: unknown }).cause;
  }
  return message;
}
