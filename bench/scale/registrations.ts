/**
 * Registration throughput, from the server's own record: every certificate the agent API
 * issues is logged at shard/<shard>/certlog/<tenant>.<yyyyMMddHHmmssSSS>.<id>.json, so the
 * log's keys say when each registration was served, whatever the simulated fleet saw.
 */
import { certLogPrefix } from '../../adapters/pki/certlog';
import { listKeys } from '../../test/support/emulator';
import type { ScaleStack } from './stack';
import type { Window } from './histories';

export interface Registrations {
  count: number;
  /** ms from the phase start to the first and the last registration. */
  firstMs?: number;
  lastMs?: number;
  /** Registrations per second from the first to the last. */
  perSecond?: number;
  /** Most registrations in any 10 s, per second. */
  peakPerSecond10s?: number;
}

/** The time a certificate log key names (UTC), ms since epoch. */
export function certLogTime(key: string): number | undefined {
  const stamp = /\.(\d{17})\.[^.]+\.json$/.exec(key)?.[1];
  if (!stamp) return undefined;
  const n = (from: number, to: number) => Number(stamp.slice(from, to));
  return Date.UTC(n(0, 4), n(4, 6) - 1, n(6, 8), n(8, 10), n(10, 12), n(12, 14), n(14, 17));
}

export function throughput(times: number[], startedAt: number): Registrations {
  const sorted = [...times].sort((a, b) => a - b);
  if (sorted.length === 0) return { count: 0 };
  const first = sorted[0] as number;
  const last = sorted[sorted.length - 1] as number;
  let peak = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while ((sorted[i] as number) - (sorted[j] as number) >= 10_000) j++;
    peak = Math.max(peak, i - j + 1);
  }
  const span = (last - first) / 1000;
  return {
    count: sorted.length,
    firstMs: first - startedAt,
    lastMs: last - startedAt,
    ...(span > 0 ? { perSecond: Math.round((sorted.length / span) * 10) / 10 } : {}),
    peakPerSecond10s: Math.round((peak / 10) * 10) / 10,
  };
}

export async function registrationsIn(stack: ScaleStack, window: Window, startedAt: number): Promise<Registrations> {
  const keys = await listKeys(stack.aws.s3, stack.bucket, certLogPrefix(stack.shard));
  const times = keys.map(certLogTime).filter((t): t is number => t !== undefined && t >= window.from && t <= window.to);
  return throughput(times, startedAt);
}
