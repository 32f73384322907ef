/** One GC benchmark pass, as reported: duration and phases, calls by kind, and what it collected. */
import type { WorkflowHandle } from '@temporalio/client';
import { tsToMs } from '@temporalio/common';
import type { GcCounts, Orphan } from '../../activities/gc-activities';
import type { CallRecord } from '../../test/support/faults';
import type { TemporalCallLayer } from '../../test/support/temporal-calls';
import { ORPHAN_ROLES, type Launched } from './fleet';

export interface PassReport {
  name: string;
  /** Workflow start to its result. */
  durationMs: number;
  /** The collectGarbage activity, started to completed (from the pass workflow's history). */
  activityMs: number;
  fractionOfInterval: string;
  /**
   * Consecutive phases of the activity, from the calls' times: both listings (EC2's and visibility's,
   * made at once), confirming the suspects, terminating and auditing the orphans. `listOwnersMs` is
   * visibility's part of the first phase on its own (first request to last answer).
   */
  phasesMs: { listBoth: number; confirmSuspects: number; terminateAndAudit: number; listOwnersMs: number };
  calls: { DescribeInstancesPages: number; ListWorkflowExecutions: number; DescribeWorkflowExecution: number; TerminateInstances: number };
  /** The activity's own counts, as it logged them. */
  counts?: GcCounts;
  collected: { total: number; byRole: Record<string, number>; byWhy: Record<string, number>; notOrphans: number };
}

export interface PassInput {
  name: string;
  handle: WorkflowHandle;
  durationMs: number;
  collected: Orphan[];
  fleet: readonly Launched[];
  temporal: TemporalCallLayer;
  ec2Calls: CallRecord[];
  counts?: GcCounts;
  intervalMs: number;
}

const countBy = <T>(items: readonly T[], key: (item: T) => string): Record<string, number> =>
  items.reduce<Record<string, number>>((acc, item) => ((acc[key(item)] = (acc[key(item)] ?? 0) + 1), acc), {});

export async function passReport(input: PassInput): Promise<PassReport> {
  const history = await input.handle.fetchHistory();
  const at = (type: string): number => {
    const event = (history.events ?? []).find((e) => e[type as 'activityTaskStartedEventAttributes']);
    return event ? tsToMs(event.eventTime) : NaN;
  };
  const activityStart = at('activityTaskStartedEventAttributes');
  const activityEnd = at('activityTaskCompletedEventAttributes');
  const listings = input.ec2Calls.filter((c) => c.command === 'DescribeInstances' && c.input.Filters !== undefined && c.input.MaxResults !== undefined);
  const terminations = input.ec2Calls.filter((c) => c.command === 'TerminateInstances');
  const firstOf = (method: string) => input.temporal.calls.find((c) => c.method === method)?.at;
  const ownerPages = input.temporal.calls.filter((c) => c.method === 'listWorkflowExecutions');
  const listOwnersMs = ownerPages.length > 0 ? (ownerPages.at(-1)?.answeredAt ?? NaN) - (ownerPages[0]?.at ?? NaN) : 0;
  // Each phase ends where the next begins; a phase with no call of its own takes no time.
  const marks = [activityStart, firstOf('describeWorkflowExecution'), terminations[0]?.at, activityEnd];
  for (let i = marks.length - 2; i >= 0; i--) marks[i] ??= marks[i + 1];
  const span = (i: number) => Math.max(0, (marks[i + 1] as number) - (marks[i] as number));

  const byEc2Id = new Map(input.fleet.map((l) => [l.ec2InstanceId, l]));
  const roleOf = (o: Orphan) => byEc2Id.get(o.ec2InstanceId)?.role ?? 'unknown';
  return {
    name: input.name,
    durationMs: input.durationMs,
    activityMs: activityEnd - activityStart,
    fractionOfInterval: (input.durationMs / input.intervalMs).toFixed(3),
    phasesMs: { listBoth: span(0), confirmSuspects: span(1), terminateAndAudit: span(2), listOwnersMs },
    calls: {
      DescribeInstancesPages: listings.length,
      ListWorkflowExecutions: input.temporal.count('listWorkflowExecutions'),
      DescribeWorkflowExecution: input.temporal.count('describeWorkflowExecution'),
      TerminateInstances: terminations.length,
    },
    counts: input.counts,
    collected: {
      total: input.collected.length,
      byRole: countBy(input.collected, roleOf),
      byWhy: countBy(input.collected, (o) => o.why.replace(/web-[\w-]+|i-[0-9a-f]+/g, '<id>')),
      notOrphans: input.collected.filter((o) => !ORPHAN_ROLES.includes(roleOf(o) as Launched['role'])).length,
    },
  };
}
