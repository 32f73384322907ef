/**
 * The project, 0 → N: `nstance group scale default/web N` against a warmed-up worker
 * process and the simulated fleet, timed until EC2 shows N running and until the group
 * has N in service; then held for a while in steady state, and scaled back to 0.
 */
import { censusDiff } from '../../test/support/call-census';
import { callFigures, passFigures, type CallFigures, type PassFigures } from './figures';
import * as os from 'node:os';
import { groupWorkflowId } from '../../common/names';
import { readHistories, signalRecordedAt, type HistoryFindings } from './histories';
import type { FleetReport } from './fleet-process';
import { heldCurve } from './ledger';
import { memoryOf } from './proc';
import type { ReplayFindings } from './replay';
import { registrationsIn, type Registrations } from './registrations';
import type { Session } from './session';
import { inServiceOf } from './stack';
import { confirmRunning, thin, type Confirmation, type Sample } from './watch';

export type { CallFigures, PassFigures };

export interface ScaleUpResult {
  size: number;
  /** `nstance group scale` started → it returned (mostly the CLI process starting). */
  scaleCommandMs: number;
  /** `nstance group scale` started → the server recorded its signal to the group (the command reached the orchestrator). */
  signalledMs: number;
  /** Signal recorded → EC2 holds N (the proxy's ledger; running on moto). The floor is timed from its first call likewise. */
  allRunningMs: number;
  /** One describe of EC2 at the end of the hold (so that it delays nothing timed): it shows N running. */
  confirmed: Confirmation;
  /** Signal recorded → the group has N in service. */
  allInServiceMs: number;
  inServiceAfterRunningMs: number;
  /** The same two, from the moment the command was started (what a user at the terminal waits). */
  fromCommandStart: { allRunningMs: number; allInServiceMs: number };
  calls: CallFigures;
  throttles: { injected: number; surfaced: number };
  passes: PassFigures;
  histories: HistoryFindings;
  /** The group workflow's runs of the phase, replayed against the workers' bundle. */
  replay: ReplayFindings;
  worker: { maxRssMb: number; peakRssMb?: number; rssAtEndOfHoldMb?: number };
  registrations: Registrations;
  fleet: FleetReport;
  cpuSeconds: Record<string, number>;
  /** Leadership epochs that began during scale-up and hold: each is a lost lease or a new leader (the agent API answers 503 meanwhile). */
  leaderChanges?: number;
  /** The machine's 1-minute load average when the phase started and when it was scaled up (others may share the cores). */
  loadAverage: { start: number; end: number };
  /** The benchmark's own EC2 reads during the scale-up and hold (they load moto too). */
  benchReads: { describes: number; seconds: number };
  hold: { ms: number; minInService: number; runInstances: number; terminateInstances: number; eventsPerPass?: number };
  scaleDown: { ms: number; calls: CallFigures };
  lastError?: string;
  samples: Sample[];
}

const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

export async function runScaleUp(session: Session, size: number): Promise<ScaleUpResult> {
  const { stack } = session;
  const timeout = stack.options.phaseTimeoutMs;
  // Each side is measured as if alone in the account: the floor's launches do not count against the project.
  stack.proxy.limits?.refillAll();
  const before = stack.proxy.census.snapshot();
  const cpuBefore = session.cpu();
  const epochBefore = await stack.leaderEpoch();
  const loadAtStart = os.loadavg()[0] ?? 0;
  const startedAt = Date.now();
  const watch = session.watch(startedAt, `0 → ${size}`);
  try {
    await session.scale(size);
    const scaleCommandMs = Date.now() - startedAt;
    const launched = () => heldCurve(stack.proxy.instanceEvents, startedAt).reachedAt[size - 1];
    const running = watch.until(`EC2 to hold ${size} (proxy ledger)`, () => launched() !== undefined, timeout);
    const inService = watch.until(`${size} in service`, (v) => !!v.group && v.group.desired === size && inServiceOf(v.group) >= size, timeout);
    // Awaited below; until then a timeout must not count as an unhandled rejection.
    for (const p of [running, inService]) p.catch(() => undefined);
    const signalledAt = await signalRecordedAt(stack.client, groupWorkflowId(stack.shard, 'default', 'web'), 'reconcile', startedAt).catch(() => undefined);
    const signalledMs = (signalledAt ?? startedAt + scaleCommandMs) - startedAt;
    const heldAtMs = await running;
    const fromCommandStart = { allRunningMs: (launched() ?? startedAt + heldAtMs) - startedAt, allInServiceMs: await inService };
    const allRunningMs = fromCommandStart.allRunningMs - signalledMs;
    const allInServiceMs = fromCommandStart.allInServiceMs - signalledMs;
    const atSize = stack.proxy.census.snapshot();
    const registeredBy = Date.now();

    const holdFrom = watch.samples.length;
    const holdStart = stack.proxy.census.snapshot();
    await new Promise((r) => setTimeout(r, stack.options.holdMs));
    const holdCalls = censusDiff(stack.proxy.census.snapshot(), holdStart).actions;
    const holdSamples = watch.samples.slice(holdFrom);
    const cpuSeconds = session.cpuSince(cpuBefore);
    const fleet = session.fleet.report();
    const scaledUpAt = Date.now();
    const lastError = watch.last?.group?.lastError;
    await watch.stop();
    const confirmed = await confirmRunning(watch, size, 'the project');
    const benchReads = { ...watch.reads };
    const loadAverage = { start: round(loadAtStart), end: round(os.loadavg()[0] ?? 0) };
    const epochAfter = await stack.leaderEpoch();

    const downStart = stack.proxy.census.snapshot();
    const scaleDownMs = await session.drainToZero();
    const scaleDownCalls = censusDiff(stack.proxy.census.snapshot(), downStart);

    const window = { from: startedAt, to: Date.now() };
    const histories = await readHistories(stack.client, stack.shard, { from: startedAt, to: scaledUpAt });
    const surfacedInScaleDown = (await readHistories(stack.client, stack.shard, { from: scaledUpAt + 1, to: window.to })).throttlesSurfaced;
    const replay = await stack.replayGroup(window);
    const calls = callFigures(censusDiff(atSize, before), size);
    const memory = session.worker.child.pid ? memoryOf(session.worker.child.pid) : undefined;
    return {
      size,
      scaleCommandMs,
      signalledMs,
      allRunningMs,
      confirmed,
      allInServiceMs,
      inServiceAfterRunningMs: allInServiceMs - allRunningMs,
      fromCommandStart,
      calls,
      throttles: {
        injected: Object.values(censusDiff(stack.proxy.census.snapshot(), before).actions).reduce((n, c) => n + (c.outcomes.throttled ?? 0), 0),
        surfaced: histories.throttlesSurfaced + surfacedInScaleDown,
      },
      passes: { ...passFigures(watch.samples), groupEventsPerInstance: round(histories.group.events / size, 1) },
      histories,
      replay,
      worker: {
        maxRssMb: round(watch.maxWorkerRssBytes / 2 ** 20, 1),
        peakRssMb: memory ? round(memory.peakRssBytes / 2 ** 20, 1) : undefined,
        rssAtEndOfHoldMb: holdSamples[holdSamples.length - 1]?.workerRssMb,
      },
      registrations: await registrationsIn(stack, { from: startedAt, to: registeredBy }, startedAt),
      fleet,
      cpuSeconds,
      loadAverage,
      ...(epochBefore !== undefined && epochAfter !== undefined ? { leaderChanges: epochAfter - epochBefore } : {}),
      benchReads,
      hold: {
        ms: stack.options.holdMs,
        minInService: Math.min(...holdSamples.map((s) => s.group?.inService ?? size)),
        runInstances: holdCalls['ec2:RunInstances']?.calls ?? 0,
        terminateInstances: holdCalls['ec2:TerminateInstances']?.calls ?? 0,
        eventsPerPass: passFigures(holdSamples).eventsPerPass,
      },
      scaleDown: { ms: scaleDownMs, calls: callFigures(scaleDownCalls, size) },
      ...(lastError ? { lastError } : {}),
      samples: thin(watch.samples),
    };
  } finally {
    await watch.stop();
  }
}
