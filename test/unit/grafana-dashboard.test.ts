/**
 * docs/grafana-dashboard.json asks only for metrics the worker serves: every `nstance_`
 * name in its queries is one the domain registry (with the per-group gauges) defines.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Registry } from 'prom-client';
import { domainRegistry } from '../../adapters/metrics/domain-metrics';
import { GroupGauges } from '../../workers/metrics/group-gauges';

interface Panel {
  title: string;
  type: string;
  targets?: { expr: string }[];
}

const dashboard = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'docs', 'grafana-dashboard.json'), 'utf8')) as { panels: Panel[]; templating: { list: { query: { query: string } }[] } };

test('every nstance_ metric the dashboard queries is served', () => {
  const groups = new Registry();
  new GroupGauges({ registry: groups, read: async () => [], reporting: () => false });
  const served = new Set([...domainRegistry.getMetricsAsArray(), ...groups.getMetricsAsArray()].map((m) => m.name));
  served.add('nstance_sdk_metrics_up');
  const queries = [...dashboard.panels.flatMap((p) => p.targets ?? []).map((t) => t.expr), ...dashboard.templating.list.map((v) => v.query.query)];
  const asked = new Set(queries.flatMap((q) => q.match(/\bnstance_\w+/g) ?? []).map((name) => name.replace(/_(bucket|sum|count)$/, '')));
  expect(asked.size).toBeGreaterThan(10);
  expect([...asked].filter((name) => !served.has(name))).toEqual([]);
});

test('every panel has a query and a unique place', () => {
  const charts = dashboard.panels.filter((p) => p.type !== 'row');
  for (const p of charts) expect(p.targets?.length ?? 0).toBeGreaterThan(0);
  expect(new Set(charts.map((p) => p.title)).size).toBe(charts.length);
});
