/**
 * What a phase left in the shard's workflow histories: failures that reached a workflow
 * (ActivityTaskFailed events, by activity and cause; those carrying RequestLimitExceeded
 * are the throttles that surfaced), the group workflow's events and continue-as-new
 * runs with the size of the state each run carried, and the events of instance lives.
 */
import type { Client } from '@temporalio/client';
import { optionalTsToMs } from '@temporalio/common/lib/time';
import { TimingsCollector, type HistoryEvent, type PhaseTimings } from './timings';

export interface Window {
  from: number;
  to: number;
}

export interface HistoryFindings {
  runsRead: number;
  /** ActivityTaskFailed events in the window, by "activity: cause". */
  activityFailures: Record<string, number>;
  /** ActivityTaskFailed events in the window whose failure carries RequestLimitExceeded. */
  throttlesSurfaced: number;
  group: {
    runs: number;
    /** Events the group workflow recorded in the window. */
    events: number;
    workflowTasks: number;
    signals: number;
    activities: number;
    continuedAsNew: number;
    /** Largest state a run handed to the next (continue-as-new input), bytes. */
    carriedStateBytesMax?: number;
  };
  instance: {
    /** Instance workflow runs that started in the window. */
    runs: number;
    eventsMedian?: number;
    eventsMax?: number;
  };
  /** Workflow-task and activity waits and run times, by workflow and activity type (timings.ts). */
  timings: PhaseTimings;
}

const THROTTLE = /RequestLimitExceeded/;

/** The innermost cause's message and type of a failure (an ActivityFailure wraps the activity's error). */
function causeOf(failure: unknown): string {
  let f = failure as { message?: string; cause?: unknown; applicationFailureInfo?: { type?: string } } | undefined;
  let described = 'unknown';
  while (f) {
    const type = f.applicationFailureInfo?.type;
    if (f.message) described = `${type ? `${type}: ` : ''}${f.message}`;
    f = f.cause as typeof f;
  }
  // Ids and numbers vary per instance; the kind of failure does not.
  return described.replace(/\b(i-[0-9a-f]+|[a-z]{3}-[a-z0-9]{12}|subnet-[0-9a-f]+)\b/g, '<id>').replace(/\d+/g, 'N').slice(0, 200);
}

function inWindow(e: HistoryEvent, w: Window): boolean {
  const t = optionalTsToMs(e.eventTime) ?? 0;
  return t >= w.from && t <= w.to;
}

export async function readHistories(client: Client, shard: string, window: Window, concurrency = 6): Promise<HistoryFindings> {
  const runs: { workflowId: string; runId: string; type: string }[] = [];
  for await (const wf of client.workflow.list({ query: `NstanceShard = '${shard}'` })) {
    const started = wf.startTime.getTime();
    const closed = wf.closeTime?.getTime();
    if (started <= window.to && (closed === undefined || closed >= window.from)) runs.push({ workflowId: wf.workflowId, runId: wf.runId, type: wf.type });
  }
  const findings: HistoryFindings = {
    runsRead: runs.length,
    activityFailures: {},
    throttlesSurfaced: 0,
    group: { runs: 0, events: 0, workflowTasks: 0, signals: 0, activities: 0, continuedAsNew: 0 },
    instance: { runs: 0 },
    timings: {},
  };
  const timings = new TimingsCollector();
  const instanceEvents: number[] = [];
  let next = 0;
  const lane = async () => {
    while (next < runs.length) {
      const run = runs[next++] as (typeof runs)[number];
      const history = await client.workflow.getHandle(run.workflowId, run.runId).fetchHistory();
      const events = history.events ?? [];
      timings.add(run.type, events.filter((e) => inWindow(e, window)));
      const activityTypes = new Map<string, string>();
      for (const e of events) {
        const scheduled = e.activityTaskScheduledEventAttributes;
        if (scheduled) activityTypes.set(String(e.eventId), scheduled.activityType?.name ?? '?');
        const failed = e.activityTaskFailedEventAttributes;
        if (failed && inWindow(e, window)) {
          const key = `${activityTypes.get(String(failed.scheduledEventId)) ?? '?'}: ${causeOf(failed.failure)}`;
          findings.activityFailures[key] = (findings.activityFailures[key] ?? 0) + 1;
          if (THROTTLE.test(JSON.stringify(failed.failure ?? {}))) findings.throttlesSurfaced++;
        }
      }
      if (run.type === 'groupWorkflow') {
        const g = findings.group;
        g.runs++;
        for (const e of events.filter((x) => inWindow(x, window))) {
          g.events++;
          if (e.workflowTaskCompletedEventAttributes) g.workflowTasks++;
          if (e.workflowExecutionSignaledEventAttributes) g.signals++;
          if (e.activityTaskScheduledEventAttributes) g.activities++;
          const carried = e.workflowExecutionContinuedAsNewEventAttributes;
          if (carried) {
            g.continuedAsNew++;
            const bytes = (carried.input?.payloads ?? []).reduce((n, p) => n + (p.data?.length ?? 0), 0);
            g.carriedStateBytesMax = Math.max(g.carriedStateBytesMax ?? 0, bytes);
          }
        }
      } else if (run.type === 'instanceWorkflow' && events.length > 0 && inWindow(events[0] as HistoryEvent, window)) {
        findings.instance.runs++;
        instanceEvents.push(events.length);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  findings.timings = timings.summary();
  instanceEvents.sort((a, b) => a - b);
  if (instanceEvents.length > 0) {
    findings.instance.eventsMedian = instanceEvents[Math.floor(instanceEvents.length / 2)];
    findings.instance.eventsMax = instanceEvents[instanceEvents.length - 1];
  }
  return findings;
}

/** When the server recorded the first `signal` a workflow (its current run) got at or after `after` (ms since epoch). */
export async function signalRecordedAt(client: Client, workflowId: string, signal: string, after: number): Promise<number | undefined> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  for (const e of history.events ?? []) {
    const at = optionalTsToMs(e.eventTime) ?? 0;
    if (e.workflowExecutionSignaledEventAttributes?.signalName === signal && at >= after) return at;
  }
  return undefined;
}
