/**
 * docs/grafana-dashboard.json asks only what can be answered: every query (its variables at "All", as
 * the dashboard opens) is accepted by Prometheus's own parser (promtool, Debian's, installed by
 * scripts/prometheus.sh), and names only metrics the worker serves: the domain registry's (with the
 * per-group gauges) and Node's process metrics. Temporal Core's `temporal_*` names are checked against a
 * real scrape (test/integration/metrics-scrape.test.ts). The panels tile the grid the picture draws.
 */
import { collectDefaultMetrics, Registry } from 'prom-client';
import { domainRegistry } from '../../adapters/metrics/domain-metrics';
import { GroupGauges } from '../../workers/metrics/group-gauges';
import { chartPanels, dashboardQueries, expandVariables, GRID_COLUMNS, legendOf, metricNames, promqlOf, readDashboard } from '../../scripts/dashboard/panels';
import { findPrometheus, refusedByPromtool } from '../support/prometheus';

const dashboard = readDashboard();
const queries = dashboardQueries(dashboard).map((q) => ({ ...q, promql: expandVariables(promqlOf(q.expr), dashboard) }));

/** Histograms are served under their base name and asked for by their series. */
const baseName = (name: string) => name.replace(/_(bucket|sum|count)$/, '');

test("every query of the dashboard parses with Prometheus's own parser", async () => {
  const tools = findPrometheus();
  if ('missing' in tools) throw new Error(`no promtool could be installed (${tools.missing}); scripts/prometheus.sh installs Debian's prometheus`);
  expect(queries.length).toBeGreaterThan(20);
  expect(await refusedByPromtool(tools.promtool, queries.map((q) => q.promql))).toEqual([]);
  // The parser does refuse: a broken query is told apart (the check cannot pass on anything).
  const broken = await refusedByPromtool(tools.promtool, ['sum by (group (nstance_group_desired)']);
  expect(broken).toHaveLength(1);
  expect(broken[0]?.error).toMatch(/parse error|unexpected/i);
}, 15 * 60_000);

test('every metric the dashboard queries is one the worker serves', () => {
  const groups = new Registry();
  new GroupGauges({ registry: groups, read: async () => [], reporting: () => false });
  const processMetrics = new Registry();
  collectDefaultMetrics({ register: processMetrics });
  const served = new Set([...domainRegistry.getMetricsAsArray(), ...groups.getMetricsAsArray(), ...processMetrics.getMetricsAsArray()].map((m) => m.name));
  served.add('nstance_sdk_metrics_up');
  const asked = new Map<string, string>();
  for (const q of queries) for (const name of metricNames(q.promql)) asked.set(name, q.where);
  expect(asked.size).toBeGreaterThan(20);
  const ours = [...asked.keys()].filter((n) => !n.startsWith('temporal_'));
  expect(ours.filter((n) => !served.has(baseName(n))).map((n) => `${n} (${asked.get(n)})`)).toEqual([]);
  // Core's names are checked against a real scrape; nothing else is asked for.
  expect([...asked.keys()].filter((n) => !/^(nstance|process|nodejs|temporal)_/.test(n))).toEqual([]);
});

test('every panel has a query, a unique title and a place of its own in the 24-column grid', () => {
  const charts = chartPanels(dashboard);
  for (const p of charts) expect(p.targets?.length ?? 0).toBeGreaterThan(0);
  expect(new Set(charts.map((p) => p.title)).size).toBe(charts.length);
  const cells = new Map<string, string>();
  const clashes: string[] = [];
  for (const p of dashboard.panels) {
    expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(GRID_COLUMNS);
    for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
      for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
        const other = cells.get(`${x},${y}`);
        if (other) clashes.push(`${p.title} overlaps ${other} at ${x},${y}`);
        cells.set(`${x},${y}`, p.title);
      }
    }
  }
  expect(clashes).toEqual([]);
});

describe('reading the dashboard as Grafana does', () => {
  test('variables at "All" become the match-anything regex; an unknown one is refused by name', () => {
    expect(expandVariables('max(nstance_group_desired{shard=~"$shard", group=~"${group}"})', dashboard)).toBe('max(nstance_group_desired{shard=~".*", group=~".*"})');
    expect(() => expandVariables('nstance_group_desired{zone=~"$zone"}', dashboard)).toThrow(/variable \$zone is not one of the dashboard's \(shard, tenant, group\)/);
  });

  test("legends fill {{label}} from the series' labels; without a template the labels are listed", () => {
    expect(legendOf('{{tenant}}/{{group}} desired', { tenant: 'default', group: 'web' })).toBe('default/web desired');
    expect(legendOf('{{ instance }} RSS', {})).toBe(' RSS');
    expect(legendOf(undefined, { __name__: 'up', job: 'nstance' })).toBe('{job="nstance"}');
  });

  test('metric names are told from functions, keywords, label names, durations and strings', () => {
    expect(metricNames('histogram_quantile(0.95, sum by (le, task_queue) (rate(temporal_workflow_task_schedule_to_start_latency_seconds_bucket{kind="x"}[5m])))')).toEqual([
      'temporal_workflow_task_schedule_to_start_latency_seconds_bucket',
    ]);
    expect(metricNames('max by (tenant, group) (nstance_group_desired{group=~"a"}) - max by (tenant, group) (nstance_group_in_service)')).toEqual(['nstance_group_desired', 'nstance_group_in_service']);
    expect(metricNames('nstance_leader == 1')).toEqual(['nstance_leader']);
    expect(promqlOf('label_values(nstance_group_desired{shard=~"$shard"}, tenant)')).toBe('nstance_group_desired{shard=~"$shard"}');
  });
});
