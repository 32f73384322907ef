/**
 * Where a phase's time went, from the histories: for each workflow type, how long its workflow tasks
 * waited for a worker (scheduled → started) and ran (started → completed), and for each activity how long
 * it waited (scheduled → started) and ran (started → closed). A slow phase shows whether the worker's
 * slots, the server or the AWS calls behind the activities held it up.
 */
import type { Client } from '@temporalio/client';
import { optionalTsToMs } from '@temporalio/common/lib/time';

type History = Awaited<ReturnType<ReturnType<Client['workflow']['getHandle']>['fetchHistory']>>;
export type HistoryEvent = NonNullable<History['events']>[number];

export interface Spread {
  count: number;
  medianMs: number;
  p90Ms: number;
  maxMs: number;
  totalS: number;
}

export interface StepTimings {
  waited: Spread;
  ran: Spread;
}

/** Per "workflowType" (workflow tasks) and "workflowType/activityType" (activities). */
export type PhaseTimings = Record<string, StepTimings>;

/** Durations gathered over many histories, summarized once at the end. */
export class TimingsCollector {
  private readonly waited = new Map<string, number[]>();
  private readonly ran = new Map<string, number[]>();

  add(workflowType: string, events: readonly HistoryEvent[]): void {
    const at = new Map<string, { key: string; scheduled: number; started?: number }>();
    for (const e of events) {
      const t = optionalTsToMs(e.eventTime) ?? 0;
      const id = String(e.eventId);
      if (e.workflowTaskScheduledEventAttributes) at.set(id, { key: workflowType, scheduled: t });
      const activity = e.activityTaskScheduledEventAttributes;
      if (activity) at.set(id, { key: `${workflowType}/${activity.activityType?.name ?? '?'}`, scheduled: t });
      const started = e.workflowTaskStartedEventAttributes ?? e.activityTaskStartedEventAttributes;
      if (started) {
        const step = at.get(String(started.scheduledEventId));
        if (step) {
          step.started = t;
          push(this.waited, step.key, t - step.scheduled);
        }
      }
      const closed =
        e.workflowTaskCompletedEventAttributes ??
        e.workflowTaskFailedEventAttributes ??
        e.activityTaskCompletedEventAttributes ??
        e.activityTaskFailedEventAttributes ??
        e.activityTaskTimedOutEventAttributes;
      if (closed?.scheduledEventId !== undefined && closed.scheduledEventId !== null) {
        const step = at.get(String(closed.scheduledEventId));
        if (step?.started !== undefined) push(this.ran, step.key, t - step.started);
      }
    }
  }

  summary(): PhaseTimings {
    const out: PhaseTimings = {};
    for (const key of [...new Set([...this.waited.keys(), ...this.ran.keys()])].sort()) {
      out[key] = { waited: spread(this.waited.get(key) ?? []), ran: spread(this.ran.get(key) ?? []) };
    }
    return out;
  }
}

function push(map: Map<string, number[]>, key: string, ms: number): void {
  const list = map.get(key);
  if (list) list.push(ms);
  else map.set(key, [ms]);
}

export function spread(values: readonly number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  const total = sorted.reduce((n, v) => n + v, 0);
  return { count: sorted.length, medianMs: at(0.5), p90Ms: at(0.9), maxMs: sorted[sorted.length - 1] ?? 0, totalS: Math.round(total / 100) / 10 };
}
