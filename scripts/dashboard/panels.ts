/**
 * docs/grafana-dashboard.json read as Grafana reads it, for the dashboard picture and its unit test:
 * the panels in their grid, each target's PromQL with the dashboard's variables at "All" (as the
 * dashboard opens), and Grafana's legend templates (`{{label}}`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT } from '../../test/support/processes';

export interface GridPos {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface PanelTarget {
  expr: string;
  legendFormat?: string;
}

export interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: GridPos;
  description?: string;
  targets?: PanelTarget[];
  fieldConfig?: { defaults?: { unit?: string } };
}

interface Variable {
  name: string;
  allValue?: string;
  query: { query: string };
}

export interface Dashboard {
  title: string;
  panels: Panel[];
  templating: { list: Variable[] };
}

/** Grafana's grid is 24 columns wide. */
export const GRID_COLUMNS = 24;

export function readDashboard(file = path.join(REPO_ROOT, 'docs', 'grafana-dashboard.json')): Dashboard {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as Dashboard;
}

/** The panels that chart something (rows are headings), in the dashboard's order. */
export function chartPanels(dashboard: Dashboard): Panel[] {
  return dashboard.panels.filter((p) => p.type !== 'row');
}

/**
 * A query with the dashboard's variables at "All": each `$name` (or `${name}`) is the variable's allValue
 * (".*" here, the multi-value regex Grafana sends), so `group=~"$group"` matches every group. A variable
 * the dashboard does not define is an error naming it.
 */
export function expandVariables(expr: string, dashboard: Dashboard): string {
  const values = new Map(dashboard.templating.list.map((v) => [v.name, v.allValue ?? '.*']));
  return expr.replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, braced: string | undefined, bare: string | undefined) => {
    const name = (braced ?? bare) as string;
    // Grafana's own interval variables ($__rate_interval) are not the dashboard's: none is used here.
    const value = values.get(name);
    if (value === undefined) throw new Error(`query ${JSON.stringify(expr)}: variable $${name} is not one of the dashboard's (${[...values.keys()].join(', ')})`);
    return value;
  });
}

/** Grafana's legend: `{{label}}` replaced by the series' label value (empty when it has none); no template, the series' labels. */
export function legendOf(format: string | undefined, labels: Record<string, string>): string {
  if (format === undefined || format === '') {
    const shown = Object.entries(labels).filter(([k]) => k !== '__name__');
    return shown.length > 0 ? `{${shown.map(([k, v]) => `${k}="${v}"`).join(', ')}}` : (labels.__name__ ?? 'value');
  }
  return format.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, name: string) => labels[name] ?? '');
}

/** Every query the dashboard sends: its panels' targets and its variables' label_values queries. */
export function dashboardQueries(dashboard: Dashboard): { where: string; expr: string }[] {
  return [
    ...chartPanels(dashboard).flatMap((p) => (p.targets ?? []).map((t, i) => ({ where: `panel "${p.title}" target ${i}`, expr: t.expr }))),
    ...dashboard.templating.list.map((v) => ({ where: `variable $${v.name}`, expr: v.query.query })),
  ];
}

/** The series selector inside a `label_values(selector, label)` variable query, which is PromQL; other queries as they are. */
export function promqlOf(query: string): string {
  const m = /^label_values\((.+),\s*\w+\)$/.exec(query.trim());
  return m ? (m[1] as string) : query;
}

/**
 * Metric names a query reads: identifiers that are not functions (followed by "("), keywords, label
 * names inside braces or grouping clauses, durations or string contents.
 */
export function metricNames(expr: string): string[] {
  const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset', 'and', 'or', 'unless', 'inf', 'nan']);
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '{}')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '')
    .replace(/\[[^\]]*\]/g, '[]');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/[a-zA-Z_:][\w:]*/g)) {
    const name = m[0];
    const after = stripped.slice((m.index ?? 0) + name.length).trimStart();
    if (KEYWORDS.has(name.toLowerCase()) || after.startsWith('(')) continue;
    names.add(name);
  }
  return [...names];
}
