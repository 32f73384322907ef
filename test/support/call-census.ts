/**
 * Counts of the AWS calls that went through the fault proxy: per `service:action`, how
 * many, with which outcome, how many instances they asked for (RunInstances,
 * TerminateInstances), and S3 reads and writes by kind of key. Snapshots taken before
 * and after a benchmark phase give that phase's calls (diff).
 */
import { s3KeyKind, type AwsCall } from './aws-requests';

/** `ok` (2xx), `throttled` (RequestLimitExceeded the proxy gave), `replayed`/`mismatch` (ClientToken), else the error code. */
export type CallOutcome = 'ok' | 'throttled' | 'replayed' | 'mismatch' | string;

export interface ActionCount {
  calls: number;
  /** Instances asked for (RunInstances MaxCount, TerminateInstances ids), summed over calls; 0 for other actions. */
  instances: number;
  outcomes: Record<CallOutcome, number>;
}

export interface CensusSnapshot {
  at: number;
  /** By `service:action`, e.g. "ec2:RunInstances", "s3:GetObject". */
  actions: Record<string, ActionCount>;
  /** S3 calls by `action kind`, e.g. "GetObject config.jsonc", "PutObject audit/". */
  s3: Record<string, number>;
}

export class CallCensus {
  private actions = new Map<string, ActionCount>();
  private s3 = new Map<string, number>();

  record(call: AwsCall, outcome: CallOutcome, instances = 0): void {
    const key = `${call.service}:${call.action}`;
    const count = this.actions.get(key) ?? { calls: 0, instances: 0, outcomes: {} };
    count.calls++;
    count.instances += instances;
    count.outcomes[outcome] = (count.outcomes[outcome] ?? 0) + 1;
    this.actions.set(key, count);
    if (call.service === 's3' && call.resource !== undefined) {
      const kind = `${call.action} ${s3KeyKind(call.resource)}`;
      this.s3.set(kind, (this.s3.get(kind) ?? 0) + 1);
    }
  }

  snapshot(now = Date.now()): CensusSnapshot {
    const actions: Record<string, ActionCount> = {};
    for (const [k, v] of this.actions) actions[k] = { calls: v.calls, instances: v.instances, outcomes: { ...v.outcomes } };
    return { at: now, actions, s3: Object.fromEntries(this.s3) };
  }

  /** Throttles the proxy gave, by action. */
  throttled(snapshot: CensusSnapshot = this.snapshot()): Record<string, number> {
    return Object.fromEntries(Object.entries(snapshot.actions).filter(([, c]) => (c.outcomes.throttled ?? 0) > 0).map(([k, c]) => [k, c.outcomes.throttled ?? 0]));
  }
}

/** What happened between two snapshots (`after` minus `before`); actions with no calls in between are left out. */
export function censusDiff(after: CensusSnapshot, before: CensusSnapshot): CensusSnapshot {
  const actions: Record<string, ActionCount> = {};
  for (const [key, a] of Object.entries(after.actions)) {
    const b = before.actions[key];
    const calls = a.calls - (b?.calls ?? 0);
    if (calls <= 0) continue;
    const outcomes: Record<string, number> = {};
    for (const [o, n] of Object.entries(a.outcomes)) {
      const d = n - (b?.outcomes[o] ?? 0);
      if (d > 0) outcomes[o] = d;
    }
    actions[key] = { calls, instances: a.instances - (b?.instances ?? 0), outcomes };
  }
  const s3: Record<string, number> = {};
  for (const [kind, n] of Object.entries(after.s3)) {
    const d = n - (before.s3[kind] ?? 0);
    if (d > 0) s3[kind] = d;
  }
  return { at: after.at, actions, s3 };
}
