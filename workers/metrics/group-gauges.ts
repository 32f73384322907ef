/**
 * Per-group gauges (desired, running, in service, pending, draining, unhealthy), read from
 * the group workflows' own status: one visibility listing of the shard's running groups and
 * one counts-only query per group (`limit: 0`: a few hundred bytes whatever the group's
 * size, and nothing added to any history). Read lazily, when scraped, at most once per
 * `maxAgeMs` (concurrent scrapes share one read), and only on the worker that leads the
 * shard when leadership runs, so N workers do not query every group N times.
 *
 * Cost: at 2,000 members a query counts its members once (microseconds in the workflow);
 * 100 groups cost one list page and 100 small queries per refresh (default every 15 s).
 */
import { Gauge, type Registry } from 'prom-client';
import type { GroupStatus } from '../../common/types';

export const GROUP_GAUGES_MAX_AGE_MS = 15_000;

type Count = 'desired' | 'running' | 'inService' | 'pending' | 'draining' | 'unhealthy';
const GAUGES: [Count, string, string][] = [
  ['desired', 'nstance_group_desired', 'Size the group is kept at'],
  ['running', 'nstance_group_running', 'Members past provisioning and not leaving'],
  ['inService', 'nstance_group_in_service', 'Running members in service (registered with their target groups)'],
  ['pending', 'nstance_group_pending', 'Members provisioning'],
  ['draining', 'nstance_group_draining', 'Members leaving (draining or terminating)'],
  ['unhealthy', 'nstance_group_unhealthy', 'Members staying whose agent is unhealthy'],
];

export interface GroupGaugesOptions {
  registry: Registry;
  /** The shard's groups, counts only (client/ops/status.ts groupStatuses). */
  read: () => Promise<GroupStatus[]>;
  /** Whether this worker reports them now (the leader does; every worker when leadership is off). */
  reporting: () => boolean;
  maxAgeMs?: number;
  now?: () => number;
  onError?: (err: unknown) => void;
}

export class GroupGauges {
  private cached: { at: number; statuses: GroupStatus[] } | undefined;
  private reading: Promise<GroupStatus[]> | undefined;
  private readonly gauges: Map<Count, Gauge>;
  private readonly errors: Gauge;
  /** Reads the status since this process started; tests and the dashboard's "stale" panel use it. */
  readonly readsGauge: Gauge;
  private reads = 0;

  constructor(private readonly options: GroupGaugesOptions) {
    const self = this;
    this.gauges = new Map();
    for (const [count, name, help] of GAUGES) {
      const gauge: Gauge = new Gauge({
        name,
        help,
        labelNames: ['shard', 'tenant', 'group'],
        registers: [options.registry],
        // One read serves all six gauges: the first collect reads, the others join it or find it fresh.
        async collect() {
          const statuses = await self.snapshot();
          gauge.reset();
          for (const s of statuses) {
            const value = s[count];
            if (typeof value === 'number') gauge.set({ shard: s.shard, tenant: s.tenant, group: s.group }, value);
          }
        },
      });
      this.gauges.set(count, gauge);
    }
    this.errors = new Gauge({ name: 'nstance_group_status_errors', help: '1 when the last read of the group statuses failed', registers: [options.registry] });
    this.readsGauge = new Gauge({
      name: 'nstance_group_status_reads_total',
      help: 'Reads of the groups\' status made for these gauges',
      registers: [options.registry],
      collect() {
        this.set(self.reads);
      },
    });
  }

  /** The statuses to report: none when this worker does not report; cached within maxAgeMs. */
  private async snapshot(): Promise<GroupStatus[]> {
    if (!this.options.reporting()) return [];
    const now = (this.options.now ?? Date.now)();
    const maxAge = this.options.maxAgeMs ?? GROUP_GAUGES_MAX_AGE_MS;
    if (this.cached && now - this.cached.at < maxAge) return this.cached.statuses;
    this.reading ??= (async () => {
      try {
        this.reads++;
        const statuses = await this.options.read();
        this.cached = { at: now, statuses };
        this.errors.set(0);
        return statuses;
      } catch (err) {
        this.errors.set(1);
        this.options.onError?.(err);
        // A failed read keeps the last values rather than dropping every series.
        return this.cached?.statuses ?? [];
      } finally {
        this.reading = undefined;
      }
    })();
    return this.reading;
  }
}
