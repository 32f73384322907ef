/**
 * The dashboard's panels drawn from Prometheus's answers, laid out in the dashboard's own grid as one
 * HTML page: time series by Apache ECharts, rendered to SVG here in Node (its server-side renderer:
 * `ssr: true`, `renderToSVGString`, no DOM), stat panels as their last value, rows as headings.
 * Grafana's look is approximated (dark theme, 24 columns, 30 px grid rows); it is not Grafana.
 */
import { GRID_COLUMNS, type GridPos } from './panels';

/** What the picture shows of one panel: its place, and each series Prometheus answered (or the query's error). */
export interface PanelData {
  id: number;
  type: string;
  title: string;
  gridPos: GridPos;
  unit?: string;
  series: { name: string; points: [number, number][] }[];
  errors: string[];
}

export interface DashboardData {
  title: string;
  /** ms since epoch: the range every query covered. */
  from: number;
  to: number;
  stepSeconds: number;
  /** What the run did, in order, for the caption. */
  scenario: string[];
  panels: PanelData[];
}

/** The part of ECharts' API used here (echarts 6: `init(null, null, { renderer: 'svg', ssr: true, width, height })`). */
interface SsrChart {
  setOption(option: Record<string, unknown>): void;
  renderToSVGString(): string;
  dispose(): void;
}
interface EchartsSsr {
  init(dom: null, theme: null, opts: { renderer: 'svg'; ssr: true; width: number; height: number }): SsrChart;
}

/** ECharts, loaded when a picture is drawn: a dev dependency the rest of the project never loads. */
function loadEcharts(): EchartsSsr {
  try {
    return require('echarts') as EchartsSsr;
  } catch (err) {
    throw new Error(`the dashboard picture draws its charts with Apache ECharts, which is not installed (npm install --save-dev echarts@6.1.0): ${(err as Error).message}`);
  }
}

export const PAGE_WIDTH = 1440;
const COLUMN_PX = PAGE_WIDTH / GRID_COLUMNS;
const ROW_PX = 30;
const GAP_PX = 8;
const TITLE_PX = 28;
const THEME = { page: '#111217', panel: '#181b1f', border: '#2c3235', text: '#ccccdc', muted: '#8e8e8e', grid: '#2c3235' };
/** Grafana's classic palette, in its order. */
const PALETTE = ['#73bf69', '#f2cc0c', '#5794f2', '#ff9830', '#f2495c', '#b877d9', '#8ab8ff', '#fade2a', '#ff780a', '#ca95e5'];

const escape = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] as string);

/** A value as Grafana's units show it: bytes in MiB/GiB, seconds in ms/s, otherwise a short number. */
export function formatValue(value: number, unit: string | undefined): string {
  if (!Number.isFinite(value)) return 'n/a';
  if (unit === 'bytes') {
    const [n, u] = value >= 2 ** 30 ? [value / 2 ** 30, 'GiB'] : value >= 2 ** 20 ? [value / 2 ** 20, 'MiB'] : value >= 2 ** 10 ? [value / 2 ** 10, 'KiB'] : [value, 'B'];
    return `${n.toFixed(n >= 100 ? 0 : 1)} ${u}`;
  }
  if (unit === 's') return value < 1 ? `${(value * 1000).toFixed(0)} ms` : `${value.toFixed(value >= 100 ? 0 : 2)} s`;
  if (Math.abs(value) >= 1000) return value.toLocaleString('en-US', { maximumFractionDigits: 0 });
  return Number.isInteger(value) ? String(value) : value.toFixed(2);
}

function box(pos: GridPos): { left: number; top: number; width: number; height: number } {
  return { left: pos.x * COLUMN_PX, top: pos.y * ROW_PX, width: pos.w * COLUMN_PX - GAP_PX, height: pos.h * ROW_PX - GAP_PX };
}

function timeseriesSvg(echarts: EchartsSsr, panel: PanelData, width: number, height: number, data: DashboardData): string {
  const chart = echarts.init(null, null, { renderer: 'svg', ssr: true, width, height });
  const legendRows = panel.series.length <= 3 ? 1 : panel.series.length <= 6 ? 2 : 1;
  try {
    chart.setOption({
      animation: false,
      backgroundColor: 'transparent',
      color: PALETTE,
      textStyle: { color: THEME.text, fontFamily: 'DejaVu Sans, sans-serif', fontSize: 11 },
      // ECharts 6 keeps axis labels inside the grid's outer bounds by itself (containLabel is deprecated there).
      grid: { left: 40, right: 16, top: 12, bottom: 28 + 16 * legendRows },
      // Many series (one per activity type) scroll in one line, as Grafana's legend would cut them.
      legend: { show: panel.series.length > 0, bottom: 0, left: 0, icon: 'rect', itemWidth: 14, itemHeight: 3, textStyle: { color: THEME.text, fontSize: 11 }, type: legendRows === 1 && panel.series.length > 3 ? 'scroll' : 'plain' },
      xAxis: { type: 'time', min: data.from, max: data.to, axisLine: { lineStyle: { color: THEME.grid } }, axisLabel: { color: THEME.muted, hideOverlap: true }, splitLine: { show: true, lineStyle: { color: THEME.grid, opacity: 0.5 } } },
      yAxis: { type: 'value', minInterval: panel.unit === 'bytes' ? undefined : 1, axisLabel: { color: THEME.muted, formatter: (v: number) => formatValue(v, panel.unit) }, splitLine: { lineStyle: { color: THEME.grid, opacity: 0.5 } } },
      series: panel.series.map((s) => ({
        name: s.name,
        type: 'line',
        showSymbol: false,
        step: panel.unit === 'bytes' ? undefined : 'end',
        lineStyle: { width: 1.5 },
        data: s.points.filter(([, v]) => Number.isFinite(v)),
      })),
    });
    return chart.renderToSVGString();
  } finally {
    chart.dispose();
  }
}

function statHtml(panel: PanelData): string {
  const values = panel.series.map((s) => ({ name: s.name, value: [...s.points].reverse().find(([, v]) => Number.isFinite(v))?.[1] }));
  if (values.length === 0) return '<div class="empty">No data</div>';
  return `<div class="stat">${values
    .map((v, i) => `<div class="stat-value" style="color:${PALETTE[i % PALETTE.length]}">${escape(v.value === undefined ? 'n/a' : formatValue(v.value, panel.unit))}</div><div class="stat-name">${escape(v.name)}</div>`)
    .join('')}</div>`;
}

/** The whole page: a header (title, range, variables), the grid of panels, and a caption saying how it was made. */
export function dashboardPage(data: DashboardData): string {
  const echarts = loadEcharts();
  const cells = data.panels.map((panel) => {
    const b = box(panel.gridPos);
    const style = `left:${b.left}px;top:${b.top}px;width:${b.width}px;height:${b.height}px`;
    if (panel.type === 'row') return `<div class="row" style="${style}">${escape(panel.title)}</div>`;
    const bodyHeight = b.height - TITLE_PX;
    const body =
      panel.errors.length > 0
        ? `<div class="error">${panel.errors.map(escape).join('<br>')}</div>`
        : panel.type === 'stat'
          ? statHtml(panel)
          : panel.series.length === 0
            ? '<div class="empty">No data</div>'
            : timeseriesSvg(echarts, panel, b.width - 8, bodyHeight, data);
    return `<div class="panel" style="${style}"><div class="title">${escape(panel.title)}</div><div class="body" style="height:${bodyHeight}px">${body}</div></div>`;
  });
  const bottom = Math.max(...data.panels.map((p) => (p.gridPos.y + p.gridPos.h) * ROW_PX));
  const range = `${new Date(data.from).toISOString().slice(11, 19)} to ${new Date(data.to).toISOString().slice(11, 19)} UTC (${Math.round((data.to - data.from) / 60_000)} min, step ${data.stepSeconds} s)`;
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${escape(data.title)}</title><style>
  body { margin: 0; background: ${THEME.page}; color: ${THEME.text}; font: 12px 'DejaVu Sans', sans-serif; width: ${PAGE_WIDTH + 16}px; }
  header { padding: 10px 8px 6px; display: flex; gap: 24px; align-items: baseline; }
  header h1 { font-size: 16px; margin: 0; font-weight: 500; }
  header span { color: ${THEME.muted}; }
  .grid { position: relative; margin: 0 8px; height: ${bottom}px; }
  .panel { position: absolute; background: ${THEME.panel}; border: 1px solid ${THEME.border}; border-radius: 2px; box-sizing: border-box; overflow: hidden; }
  .title { height: ${TITLE_PX}px; line-height: ${TITLE_PX}px; padding: 0 8px; font-weight: 500; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
  .body { padding: 0 4px; }
  .row { position: absolute; font-size: 14px; font-weight: 500; line-height: ${ROW_PX}px; }
  .stat { display: flex; flex-direction: column; align-items: center; justify-content: center; height: 100%; }
  .stat-value { font-size: 34px; font-weight: 500; }
  .stat-name { color: ${THEME.muted}; margin-bottom: 6px; }
  .empty { color: ${THEME.muted}; display: flex; align-items: center; justify-content: center; height: 100%; }
  .error { color: #f2495c; padding: 8px; }
  footer { color: ${THEME.muted}; padding: 10px 8px 12px; line-height: 1.5; }
</style></head><body>
<header><h1>${escape(data.title)}</h1><span>${escape(range)}</span><span>shard = All · tenant = All · group = All</span></header>
<div class="grid">${cells.join('\n')}</div>
<footer>Drawn by scripts/dashboard-picture.ts from a real Prometheus's answers to each panel's query (query_range) over a live worker's /metrics, with Apache ECharts; not Grafana.<br>The run: ${escape(data.scenario.join('; '))}.</footer>
</body></html>
`;
}
