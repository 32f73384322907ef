/** Figures the scale benchmark derives from what it recorded: calls per instance, history events per pass. */
import type { CensusSnapshot } from '../../test/support/call-census';
import type { Sample } from './watch';

export interface CallFigures {
  /** Calls per instance, by service:action. */
  perInstance: Record<string, number>;
  totalPerInstance: number;
  /** RequestLimitExceeded answers the proxy gave, by action. */
  throttled: Record<string, number>;
  raw: CensusSnapshot;
}

export interface PassFigures {
  /** From the status query's diagnostics, when the build has them. */
  passes?: number;
  eventsPerPass?: number;
  maxEventsPerPass?: number;
  carriedStateBytesMax?: number;
  /** From the histories: group events recorded per instance launched. */
  groupEventsPerInstance: number;
}

const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

export function callFigures(raw: CensusSnapshot, instances: number): CallFigures {
  const perInstance: Record<string, number> = {};
  let total = 0;
  const throttled: Record<string, number> = {};
  for (const [action, c] of Object.entries(raw.actions).sort(([a], [b]) => a.localeCompare(b))) {
    perInstance[action] = round(c.calls / Math.max(1, instances), 3);
    total += c.calls;
    if (c.outcomes.throttled) throttled[action] = c.outcomes.throttled;
  }
  return { perInstance, totalPerInstance: round(total / Math.max(1, instances)), throttled, raw };
}

/** Group history events per reconcile pass, from the status query's diagnostics (skipping continue-as-new, where the length restarts). */
export function passFigures(samples: readonly Sample[]): Omit<PassFigures, 'groupEventsPerInstance'> {
  let passes = 0;
  let events = 0;
  let max: number | undefined;
  let carried: number | undefined;
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1]?.group;
    const b = samples[i]?.group;
    if (b?.carriedStateBytes !== undefined) carried = Math.max(carried ?? 0, b.carriedStateBytes);
    if (a?.passes === undefined || b?.passes === undefined || a.historyLength === undefined || b.historyLength === undefined) continue;
    const dp = b.passes - a.passes;
    const dh = b.historyLength - a.historyLength;
    if (dp <= 0 || dh < 0) continue;
    passes += dp;
    events += dh;
    max = Math.max(max ?? 0, dh / dp);
  }
  return passes > 0 ? { passes, eventsPerPass: round(events / passes, 1), maxEventsPerPass: round(max ?? 0, 1), carriedStateBytesMax: carried } : { carriedStateBytesMax: carried };
}

