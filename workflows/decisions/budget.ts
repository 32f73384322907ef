/**
 * How much a group may be disrupted at once: its surge (instances over size while
 * replacing), how many may be unavailable, and how many health alone may replace.
 * Pure: the group workflow resolves these against its desired size on every pass.
 */

import type { Amount } from '../../common/types';

export type { Amount };

export interface ReplacementBudget {
  /** Instances EC2 may hold over the desired size while members are replaced (create-before-destroy). */
  surge: number;
  /** Members that may be removed before a replacement serves in their place. */
  unavailable: number;
  /** Members that health alone may have in replacement at once: a fleet-wide blip must not replace the fleet. */
  healthLimit: number;
  /** Members that opportunistic (eligible) expiry replaces at a time. */
  rollingBatch: number;
}

/** Nstance's behaviour: one instance over size, none removed before its replacement serves. */
export const DEFAULT_MAX_SURGE: Amount = { count: 1 };
export const DEFAULT_MAX_UNAVAILABLE: Amount = { count: 0 };

/**
 * Health alone replaces at most this share of the group at once (at least one). An agent API
 * that agents cannot reach for a few intervals makes every member look unhealthy; like
 * Karpenter's node repair, past this share the group waits for the blip to end rather than
 * replace what is most likely healthy.
 */
export const HEALTH_REPLACEMENT_SHARE = 0.2;

/** Surge rounds up and unavailability down, as Kubernetes rolling updates do: both err on the side of capacity. */
export function resolveAmount(amount: Amount, desired: number, round: 'up' | 'down'): number {
  if ('count' in amount) return amount.count;
  const exact = (amount.percent * desired) / 100;
  return round === 'up' ? Math.ceil(exact) : Math.floor(exact);
}

export function resolveBudget(desired: number, maxSurge: Amount = DEFAULT_MAX_SURGE, maxUnavailable: Amount = DEFAULT_MAX_UNAVAILABLE): ReplacementBudget {
  let surge = resolveAmount(maxSurge, desired, 'up');
  const unavailable = resolveAmount(maxUnavailable, desired, 'down');
  // Both zero would make replacement impossible (config validation rejects it; a percentage of a tiny group can round to it).
  if (surge === 0 && unavailable === 0) surge = 1;
  return {
    surge,
    unavailable,
    healthLimit: Math.max(1, Math.floor(desired * HEALTH_REPLACEMENT_SHARE)),
    rollingBatch: Math.max(1, surge + unavailable),
  };
}
