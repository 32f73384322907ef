/**
 * An expiry replacement: a cohort of N instances launched with a short eligible_age (the
 * shard's expiry while they are created), so that all of them become eligible within one
 * scale-up's spread and are rolled out within max_surge (forced_age is an hour later, so
 * it is the rolling replacement that is measured, not a forced one); instances created
 * after that (their replacements) get the example's long expiry again. EC2's RunInstances
 * bucket is refilled once the cohort serves: a real cohort expires days after its launch,
 * long after the bucket refilled, and the compressed expiry must not charge the
 * replacement for the cohort's own launches. Timed from the first sign of replacement (EC2 holds more than N, or
 * an original is gone) until no original is left and N are in service, while recording
 * the most instances EC2 held at once: it must stay within N + max_surge.
 */
import { censusDiff } from '../../test/support/call-census';
import { readHistories, type HistoryFindings } from './histories';
import { heldCurve } from './ledger';
import type { ReplayFindings } from './replay';
import { surgeCount } from './options';
import { callFigures, type CallFigures } from './figures';
import type { Session } from './session';
import { inServiceOf } from './stack';
import { thin, type Sample } from './watch';

export interface ReplacementResult {
  size: number;
  /** The group's max_surge, or null when this build's config does not know the field (replacement at its built-in surge of 1). */
  maxSurge: string | null;
  /** Most instances EC2 may hold: size + surge. */
  allowedHeld: number;
  /** Most instances EC2 held at once (the proxy's ledger, exact). */
  maxHeld: number;
  /** The same, as seen by sampling EC2 every few seconds (a cross-check). */
  maxHeldSampled: number;
  withinSurge: boolean;
  /** Fewest members in service while the cohort was being replaced (what max_unavailable bounds). */
  minInService: number;
  /** The cohort's eligible_age. */
  expiry: string;
  /** The cohort's forced_age (an hour after eligible_age: the replacement measured is the rolling one). */
  forcedExpiry: string;
  cohortInServiceMs: number;
  /** Cohort in service → the first sign of replacement. */
  firstReplacementAfterMs: number;
  /** First sign of replacement → no original left and N in service. */
  replaceAllMs: number;
  throttles: { injected: number; surfaced: number };
  calls: CallFigures;
  histories: HistoryFindings;
  replay: ReplayFindings;
  worker: { maxRssMb: number };
  cpuSeconds: Record<string, number>;
  /** Leadership epochs that began during the phase (lost leases or new leaders). */
  leaderChanges?: number;
  /** The benchmark's own EC2 reads during the phase. */
  benchReads: { describes: number; seconds: number };
  samples: Sample[];
}

/** The gap between the cohort's eligible_age and forced_age. */
const FORCED_AFTER_S = 3600;

/** eligible_age for the cohort: longer than the cohort takes to be in service, so none is replaced before all are up. */
export function cohortExpiryMs(size: number, knownInServiceMs?: number, override?: number): number {
  if (override !== undefined) return override;
  return Math.max(120_000, knownInServiceMs !== undefined ? Math.ceil(1.5 * knownInServiceMs) : 600 * size);
}

export async function runReplacement(session: Session, size: number, knownInServiceMs?: number): Promise<ReplacementResult> {
  const { stack } = session;
  const timeout = stack.options.phaseTimeoutMs;
  const surgeKnown = await stack.accepts({ maxSurge: stack.options.maxSurge });
  const maxSurge = surgeKnown ? stack.options.maxSurge : undefined;
  const allowedHeld = size + (maxSurge ? surgeCount(maxSurge, size) : 1);
  const expirySeconds = Math.ceil(cohortExpiryMs(size, knownInServiceMs, stack.options.replaceExpiryMs) / 1000);
  const expiry = `${expirySeconds}s`;
  const forcedExpiry = `${expirySeconds + FORCED_AFTER_S}s`;
  await stack.applyConfig({ expiry: { eligible_age: expiry, forced_age: forcedExpiry }, maxSurge });

  stack.proxy.limits?.refillAll();
  const before = stack.proxy.census.snapshot();
  const cpuBefore = session.cpu();
  const epochBefore = await stack.leaderEpoch();
  const startedAt = Date.now();
  const watch = session.watch(startedAt, `replace ${size}`);
  try {
    await session.scale(size);
    await watch.until(`the group to have created its ${size} instances`, (v) => !!v.group && v.group.running + v.group.pending + v.group.draining >= size, timeout);
    // Only the cohort expires soon: what the group creates from now on (the replacements) has the usual expiry.
    await stack.applyConfig({ maxSurge });
    const ledger = () => heldCurve(stack.proxy.instanceEvents, startedAt);
    await watch.until(`EC2 to hold the cohort's ${size}`, () => ledger().held.size >= size, timeout);
    const atCohort = ledger();
    const cohort = new Set(atCohort.held);
    if (atCohort.launched > size) throw new Error(`instances were replaced before the cohort was up (${atCohort.launched} launched for ${size}): an early expiry (set BENCH_REPLACE_EXPIRY above the time ${size} take to be in service) or failed launches or registrations`);
    const cohortInServiceMs = await watch.until(`the cohort of ${size} in service`, (v) => !!v.group && inServiceOf(v.group) >= size, timeout);
    stack.proxy.limits?.refillAll();
    const originalsLeft = () => {
      const held = ledger().held;
      return { held: held.size, originals: [...cohort].filter((id) => held.has(id)).length };
    };
    const firstMs = await watch.until('replacement to begin', () => {
      const now = originalsLeft();
      return now.held > size || now.originals < size;
    }, expirySeconds * 1000 + timeout);
    let minInService = size;
    const doneMs = await watch.until(`every one of the ${size} originals replaced`, (v) => {
      if (v.group) minInService = Math.min(minInService, inServiceOf(v.group));
      return originalsLeft().originals === 0 && !!v.group && inServiceOf(v.group) >= size;
    }, timeout);
    const calls = callFigures(censusDiff(stack.proxy.census.snapshot(), before), size);
    const cpuSeconds = session.cpuSince(cpuBefore);
    const doneAt = Date.now();
    const maxHeld = heldCurve(stack.proxy.instanceEvents, startedAt, doneAt).maxHeld;
    const epochAfter = await stack.leaderEpoch();
    await watch.stop();
    await session.drainToZero();
    const histories = await readHistories(stack.client, stack.shard, { from: startedAt, to: doneAt });
    const replay = await stack.replayGroup({ from: startedAt, to: Date.now() });
    return {
      size,
      maxSurge: maxSurge ?? null,
      allowedHeld,
      maxHeld,
      maxHeldSampled: watch.maxHeld,
      withinSurge: maxHeld <= allowedHeld,
      minInService,
      expiry,
      forcedExpiry,
      cohortInServiceMs,
      firstReplacementAfterMs: firstMs - cohortInServiceMs,
      replaceAllMs: doneMs - firstMs,
      throttles: { injected: Object.values(calls.throttled).reduce((a, b) => a + b, 0), surfaced: histories.throttlesSurfaced },
      calls,
      histories,
      replay,
      worker: { maxRssMb: Math.round((watch.maxWorkerRssBytes / 2 ** 20) * 10) / 10 },
      cpuSeconds,
      ...(epochBefore !== undefined && epochAfter !== undefined ? { leaderChanges: epochAfter - epochBefore } : {}),
      benchReads: { ...watch.reads },
      samples: thin(watch.samples),
    };
  } finally {
    await watch.stop();
  }
}
