/** Counts that may be given as a percentage of a group's size (`max_surge: "10%"`). */
import type { Amount } from './types';

/** A non-negative integer, or "N%" with N from 0 to 100; undefined when it is neither. */
export function parseAmount(value: unknown): Amount | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 ? { count: value } : undefined;
  if (typeof value !== 'string') return undefined;
  const match = /^(\d{1,3})%$/.exec(value.trim());
  if (!match) return undefined;
  const percent = Number(match[1]);
  return percent <= 100 ? { percent } : undefined;
}

export function formatAmount(amount: Amount): string {
  return 'count' in amount ? String(amount.count) : `${amount.percent}%`;
}
