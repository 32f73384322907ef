/**
 * Pure reconcile decisions for a group: no Temporal, no AWS, no clock of their
 * own. The group workflow feeds them its state and carries out the result.
 */
import type { Member, Phase } from '../../common/types';

export interface ReconcileInput {
  desired: number;
  members: Member[];
  /** Workflow time in ms. */
  now: number;
  /** Creation is paused until then after failures, so a broken config does not spin. */
  backoffUntil?: number;
}

export interface ReconcileDecision {
  create: number;
  /** Instance ids to remove, oldest first. */
  terminate: string[];
  /** True when creation was wanted but held back by the backoff. */
  heldBack: boolean;
}

const GONE: ReadonlySet<Phase> = new Set(['terminated', 'failed']);
const PENDING: ReadonlySet<Phase> = new Set(['provisioning']);
const LEAVING: ReadonlySet<Phase> = new Set(['draining', 'terminating']);

/** Counts toward the group's size: not gone and not on its way out. */
export function isActive(m: Member): boolean {
  return !m.leaving && !GONE.has(m.phase) && !LEAVING.has(m.phase);
}

export function byAge(a: Member, b: Member): number {
  return a.seq - b.seq;
}

export function decideReconcile(input: ReconcileInput): ReconcileDecision {
  const active = input.members.filter(isActive).sort(byAge);
  const missing = input.desired - active.length;
  if (missing > 0) {
    const heldBack = input.backoffUntil !== undefined && input.now < input.backoffUntil;
    return { create: heldBack ? 0 : missing, terminate: [], heldBack };
  }
  // Oldest first: the newest instances carry the newest image and config.
  return { create: 0, terminate: active.slice(0, Math.max(0, -missing)).map((m) => m.instanceId), heldBack: false };
}

export interface GroupCounts {
  running: number;
  pending: number;
  draining: number;
}

export function countMembers(members: Member[]): GroupCounts {
  let running = 0;
  let pending = 0;
  let draining = 0;
  for (const m of members) {
    if (GONE.has(m.phase)) continue;
    if (m.leaving || LEAVING.has(m.phase)) draining++;
    else if (PENDING.has(m.phase)) pending++;
    else running++;
  }
  return { running, pending, draining };
}

/** Delay before creating again after `failures` consecutive failed launches: 5 s doubling, capped at 5 min. */
export function creationBackoffMs(failures: number): number {
  if (failures <= 0) return 0;
  return Math.min(5_000 * 2 ** (failures - 1), 300_000);
}

/** A short, unique-enough instance id: the template kind, then base-32 from workflow-deterministic randomness. */
export function newInstanceId(kind: string, random: () => number): string {
  const alphabet = '0123456789abcdefghjkmnpqrstvwxyz';
  let suffix = '';
  for (let i = 0; i < 12; i++) suffix += alphabet[Math.floor(random() * alphabet.length)];
  return `${kind}-${suffix}`;
}
