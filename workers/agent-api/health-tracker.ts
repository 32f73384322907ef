/**
 * Agent health, in the leader's memory only. Reports arrive every interval per
 * instance; turning each into a signal would grow workflow history with traffic,
 * so the tracker keeps the last report and emits a HealthTransition only when
 * the state changes: unhealthy after `missedLimit` intervals without a report (or
 * an unhealthy report), healthy again, or a termination notice (once per deadline).
 */
import type { HealthTransition } from '../../workflows/definitions';
import { recordMissedHealthReports } from '../../adapters/metrics/domain-metrics';

export interface HealthReport {
  status: 'healthy' | 'unhealthy';
  /** Why the agent thinks it is unhealthy (failed checks). */
  reason?: string;
  /** Present when the instance got a termination notice (spot interruption, scheduled event). */
  terminationNotice?: { deadline: string; reason?: string };
}

interface Tracked {
  lastSeenMs: number;
  state: 'healthy' | 'unhealthy';
  lastReport?: HealthReport;
  /** Deadline of the termination notice already signalled. */
  noticeDeadline?: string;
  unhealthySinceMs?: number;
}

export interface HealthTrackerOptions {
  /** The shard's health_check_interval; a function because config can change. */
  intervalMs: () => number;
  missedLimit?: number;
  now?: () => number;
  /** Delivers a transition; resolve 'gone' when the instance's workflow no longer exists. */
  notify: (transition: HealthTransition) => Promise<'ok' | 'gone'>;
  onError?: (err: unknown, transition: HealthTransition) => void;
  /** Unhealthy instances are forgotten after this many intervals (their workflow will have replaced them). */
  forgetAfterIntervals?: number;
}

export class HealthTracker {
  private readonly instances = new Map<string, Tracked>();
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private readonly missedLimit: number;

  constructor(private readonly options: HealthTrackerOptions) {
    this.now = options.now ?? Date.now;
    this.missedLimit = options.missedLimit ?? 3;
  }

  /** An agent just registered: it counts as healthy and is expected to report from now on. */
  registered(instanceId: string): void {
    this.instances.set(instanceId, { lastSeenMs: this.now(), state: 'healthy' });
  }

  /**
   * Expects reports from instances this process never heard from, as if each had
   * just reported at `lastSeenMs`: a new leader learns from Temporal which agents
   * should be reporting, so one that stays silent is still found after `missedLimit`
   * intervals. Instances already tracked keep what was recorded (it is fresher).
   */
  seed(instanceIds: Iterable<string>, lastSeenMs = this.now()): number {
    let added = 0;
    for (const id of instanceIds) {
      if (this.instances.has(id)) continue;
      this.instances.set(id, { lastSeenMs, state: 'healthy' });
      added++;
    }
    return added;
  }

  /** Records a report; returns (and notifies) the transitions it caused. */
  report(instanceId: string, report: HealthReport): HealthTransition[] {
    const at = this.now();
    const tracked = this.instances.get(instanceId) ?? { lastSeenMs: at, state: 'healthy' as const };
    const out: HealthTransition[] = [];
    const iso = new Date(at).toISOString();
    tracked.lastSeenMs = at;
    tracked.lastReport = report;
    if (report.status !== tracked.state) {
      tracked.state = report.status;
      tracked.unhealthySinceMs = report.status === 'unhealthy' ? at : undefined;
      out.push({
        instanceId,
        status: report.status,
        reason: report.status === 'healthy' ? 'agent reports healthy again' : `agent reports unhealthy${report.reason ? `: ${report.reason}` : ''}`,
        at: iso,
      });
    }
    const notice = report.terminationNotice;
    if (notice && notice.deadline !== tracked.noticeDeadline) {
      tracked.noticeDeadline = notice.deadline;
      out.push({ instanceId, status: 'termination-notice', reason: notice.reason ?? 'termination notice from the agent', at: iso, deadline: notice.deadline });
    }
    this.instances.set(instanceId, tracked);
    this.deliver(out);
    return out;
  }

  /** Finds instances that missed `missedLimit` intervals; called on a timer (and by tests with a fake clock). */
  check(): HealthTransition[] {
    const at = this.now();
    const interval = this.options.intervalMs();
    const out: HealthTransition[] = [];
    for (const [instanceId, tracked] of this.instances) {
      if (tracked.state === 'unhealthy') {
        const forgetAfter = (this.options.forgetAfterIntervals ?? 100) * interval;
        if (tracked.unhealthySinceMs !== undefined && at - tracked.unhealthySinceMs > forgetAfter) this.instances.delete(instanceId);
        continue;
      }
      const silentMs = at - tracked.lastSeenMs;
      if (silentMs >= this.missedLimit * interval) {
        recordMissedHealthReports();
        tracked.state = 'unhealthy';
        tracked.unhealthySinceMs = at;
        out.push({
          instanceId,
          status: 'unhealthy',
          reason: `no health report for ${Math.round(silentMs / 1000)}s (${this.missedLimit} missed intervals of ${Math.round(interval / 1000)}s)`,
          at: new Date(at).toISOString(),
        });
      }
    }
    this.deliver(out);
    return out;
  }

  state(instanceId: string): { state: 'healthy' | 'unhealthy'; lastSeen: string; lastReport?: HealthReport } | undefined {
    const t = this.instances.get(instanceId);
    return t && { state: t.state, lastSeen: new Date(t.lastSeenMs).toISOString(), lastReport: t.lastReport };
  }

  get size(): number {
    return this.instances.size;
  }

  forget(instanceId: string): void {
    this.instances.delete(instanceId);
  }

  /** Forgets everything: a worker that (re)gains leadership must not judge agents by reports it never saw (it seeds afresh). */
  reset(): void {
    this.instances.clear();
  }

  /** Checks twice per interval (re-read each time, so a config change takes effect). */
  start(): void {
    this.stop();
    const loop = () => {
      this.timer = setTimeout(() => {
        this.check();
        loop();
      }, Math.max(100, this.options.intervalMs() / 2));
      this.timer.unref();
    };
    loop();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /**
   * Sends each transition; if sending fails, the state it recorded is undone so
   * the next check or report emits it again (a lost signal would leave the
   * workflow believing a dead instance is healthy).
   */
  private deliver(transitions: HealthTransition[]): void {
    for (const t of transitions) {
      this.options.notify(t).then(
        (result) => {
          if (result === 'gone') this.instances.delete(t.instanceId);
        },
        (err) => {
          const tracked = this.instances.get(t.instanceId);
          if (tracked && t.status === 'termination-notice') tracked.noticeDeadline = undefined;
          else if (tracked && tracked.state === t.status) tracked.state = t.status === 'healthy' ? 'unhealthy' : 'healthy';
          this.options.onError?.(err, t);
        },
      );
    }
  }
}
