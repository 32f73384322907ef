/**
 * Rejected agent requests, audited in summary. One audit object per rejection let any
 * peer write to S3 (and the bill) as fast as it could send. Instead, rejections are
 * counted in memory per (action, reason) over a window and written as one summary per
 * key per window: the count, the first and last time, a bounded sample of remotes,
 * instance ids and events. A global cap bounds the objects per window: past it, new keys
 * fold into one overflow summary. A summary that cannot be written is retried at the next
 * flush under the same key (create-only), so a retry never duplicates it.
 */
import { randomUUID } from 'node:crypto';
import type { AuditEntry } from '../../common/types';

export type RejectionAction = 'agent.register.rejected' | 'agent.auth.rejected' | 'agent.health.rejected' | 'agent.files.rejected' | 'agent.renew.rejected' | 'agent.keys.rejected' | 'agent.rate-limited';

export interface Rejection {
  action: RejectionAction;
  /** The stable reason code the peer was answered with. */
  reason: string;
  /** The peer's address (host:port). */
  remote?: string;
  instanceIds?: string[];
  tenant?: string;
  group?: string;
  /** Everything else about this one event; kept only in the bounded sample. */
  details?: Record<string, unknown>;
}

export const OVERFLOW_ACTION = 'agent.rejected.overflow';

export interface RejectionAggregatorOptions {
  shard: string;
  actor: string;
  /** Writes one summary (create-only under `dedupeKey`). */
  write: (entry: AuditEntry, dedupeKey: string) => Promise<void>;
  windowMs?: number;
  /** Summary objects per window at most (the overflow summary included). */
  maxObjectsPerWindow?: number;
  /** Distinct remotes and instance ids kept per summary. */
  maxDistinct?: number;
  /** Events kept whole per summary. */
  maxSamples?: number;
  now?: () => number;
  log?: (line: string) => void;
}

interface Summary {
  action: string;
  reason: string;
  count: number;
  firstAt: number;
  lastAt: number;
  remotes: Set<string>;
  remotesDropped: number;
  instanceIds: Set<string>;
  tenants: Set<string>;
  groups: Set<string>;
  samples: Record<string, unknown>[];
}

interface Written {
  entry: AuditEntry;
  dedupeKey: string;
}

export class RejectionAggregator {
  private window = new Map<string, Summary>();
  private windowStart: number;
  private pending: Written[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<number> = Promise.resolve(0);
  private readonly id = randomUUID();
  private readonly now: () => number;
  readonly windowMs: number;
  private readonly maxObjects: number;
  private readonly maxDistinct: number;
  private readonly maxSamples: number;
  /** Rejections recorded since start, by action (for the benchmark and logs). */
  readonly totals = new Map<string, number>();

  constructor(private readonly options: RejectionAggregatorOptions) {
    this.now = options.now ?? Date.now;
    this.windowStart = this.now();
    this.windowMs = options.windowMs ?? 60_000;
    this.maxObjects = Math.max(1, options.maxObjectsPerWindow ?? 20);
    this.maxDistinct = options.maxDistinct ?? 20;
    this.maxSamples = options.maxSamples ?? 5;
  }

  record(r: Rejection): void {
    const at = this.now();
    this.totals.set(r.action, (this.totals.get(r.action) ?? 0) + 1);
    let key = `${r.action}\u0000${r.reason}`;
    let summary = this.window.get(key);
    // One slot stays for the overflow summary, so the cap holds whatever reasons arrive.
    if (!summary && this.window.size >= this.maxObjects - 1) {
      key = OVERFLOW_KEY;
      summary = this.window.get(key);
      if (!summary) {
        summary = this.newSummary(OVERFLOW_ACTION, 'too-many-kinds', at);
        this.window.set(key, summary);
      }
    } else if (!summary) {
      summary = this.newSummary(r.action, r.reason, at);
      this.window.set(key, summary);
    }
    summary.count++;
    summary.lastAt = at;
    if (r.remote) this.addBounded(summary.remotes, r.remote, () => summary.remotesDropped++);
    for (const id of r.instanceIds ?? []) this.addBounded(summary.instanceIds, id);
    if (r.tenant) this.addBounded(summary.tenants, r.tenant);
    if (r.group) this.addBounded(summary.groups, r.group);
    if (summary.samples.length < this.maxSamples) {
      const overflow = key === OVERFLOW_KEY ? { action: r.action, reason: r.reason } : {};
      summary.samples.push({ at: new Date(at).toISOString(), remote: r.remote, instanceIds: r.instanceIds, ...overflow, ...(r.details ?? {}) });
    }
  }

  /** Writes the current window's summaries (and any left from a failed flush); resolves with how many were written. */
  flush(): Promise<number> {
    const run = async (): Promise<number> => {
      const closing = this.window;
      const start = this.windowStart;
      this.window = new Map();
      this.windowStart = this.now();
      const batch = [...this.pending, ...[...closing.values()].map((s) => this.toEntry(s, start))];
      this.pending = [];
      let written = 0;
      for (const item of batch) {
        try {
          await this.options.write(item.entry, item.dedupeKey);
          written++;
        } catch (err) {
          this.pending.push(item);
          this.options.log?.(`agent API: could not write the ${item.entry.action} summary (retried at the next flush): ${(err as Error).message}`);
        }
      }
      // An S3 outage must not grow memory without bound: keep at most one window's worth.
      if (this.pending.length > this.maxObjects) this.pending = this.pending.slice(-this.maxObjects);
      return written;
    };
    // Flushes run one after another, so two never write the same window.
    this.flushing = this.flushing.then(run, run);
    return this.flushing;
  }

  start(): void {
    this.stop();
    this.timer = setInterval(() => void this.flush(), this.windowMs);
    this.timer.unref();
  }

  /** Stops the timer and writes what was counted. */
  async close(): Promise<void> {
    this.stop();
    await this.flush();
  }

  private stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private newSummary(action: string, reason: string, at: number): Summary {
    return { action, reason, count: 0, firstAt: at, lastAt: at, remotes: new Set(), remotesDropped: 0, instanceIds: new Set(), tenants: new Set(), groups: new Set(), samples: [] };
  }

  private addBounded(set: Set<string>, value: string, onDrop?: () => void): void {
    if (set.has(value)) return;
    if (set.size < this.maxDistinct) set.add(value);
    else onDrop?.();
  }

  private toEntry(s: Summary, windowStart: number): Written {
    const only = (set: Set<string>) => (set.size === 1 ? [...set][0] : undefined);
    const entry: AuditEntry = {
      shard: this.options.shard,
      action: s.action,
      actor: this.options.actor,
      at: new Date(s.firstAt).toISOString(),
      tenant: only(s.tenants),
      group: only(s.groups),
      instanceIds: s.instanceIds.size > 0 ? [...s.instanceIds] : undefined,
      details: {
        summary: true,
        reason: s.reason,
        count: s.count,
        firstAt: new Date(s.firstAt).toISOString(),
        lastAt: new Date(s.lastAt).toISOString(),
        windowStart: new Date(windowStart).toISOString(),
        windowMs: this.windowMs,
        remotes: [...s.remotes],
        ...(s.remotesDropped > 0 ? { eventsFromUnlistedRemotes: s.remotesDropped } : {}),
        samples: s.samples,
      },
    };
    return { entry, dedupeKey: `${this.id}/${windowStart}/${s.action}/${s.reason}` };
  }
}

const OVERFLOW_KEY = `${OVERFLOW_ACTION}\u0000`;
