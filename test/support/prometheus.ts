/**
 * A real Prometheus (Debian's, installed by scripts/prometheus.sh) for the dashboard: its
 * parser (promtool) checks the dashboard's queries in a unit test, and a private server on a
 * loopback port scrapes workers and answers the dashboard's queries over its HTTP API for the
 * dashboard picture (scripts/dashboard-picture.ts).
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort, REPO_ROOT } from './processes';

export interface PrometheusTools {
  prometheus: string;
  promtool: string;
}

/** Prometheus and promtool: NSTANCE_PROMETHEUS, or what scripts/prometheus.sh finds or installs. The reason when none can be had. */
export function findPrometheus(): PrometheusTools | { missing: string } {
  try {
    const out = execFileSync('bash', [path.join(REPO_ROOT, 'scripts', 'prometheus.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 15 * 60_000 });
    const found = out.trim().split('\n').pop();
    if (found && fs.existsSync(found)) return { prometheus: found, promtool: path.join(path.dirname(found), 'promtool') };
    return { missing: `scripts/prometheus.sh printed no path (${out.trim() || 'nothing'})` };
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    return { missing: stderr || (err as Error).message };
  }
}

/**
 * Which of `expressions` Prometheus's own parser refuses, with its words: each is checked as a recording
 * rule by `promtool check rules`, one file per expression so that every error is told apart.
 */
export async function refusedByPromtool(promtool: string, expressions: readonly string[]): Promise<{ expr: string; error: string }[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nstance-promql-'));
  try {
    const checks = expressions.map(async (expr, i) => {
      const file = path.join(dir, `rule-${i}.yml`);
      fs.writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n      - record: dashboard:panel_${i}\n        expr: ${JSON.stringify(expr)}\n`);
      const error = await new Promise<string | undefined>((resolve) =>
        execFile(promtool, ['check', 'rules', file], { encoding: 'utf8' }, (err, stdout, stderr) => resolve(err ? `${stdout}${stderr}`.trim() : undefined)),
      );
      return error === undefined ? undefined : { expr, error };
    });
    return (await Promise.all(checks)).filter((r): r is { expr: string; error: string } => r !== undefined);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export interface PrometheusServer {
  url: string;
  /** Points, oldest first, of each series `expr` gives from `start` to `end` (ms since epoch), `stepSeconds` apart. */
  queryRange(expr: string, start: number, end: number, stepSeconds: number): Promise<RangeSeries[]>;
  /** The targets' last scrape health, by scrape URL. */
  targets(): Promise<{ url: string; health: string; lastError: string }[]>;
  stop(): Promise<void>;
}

export interface RangeSeries {
  labels: Record<string, string>;
  /** [ms since epoch, value] (NaN where Prometheus says "NaN"). */
  points: [number, number][];
}

interface ApiAnswer<T> {
  status: 'success' | 'error';
  data: T;
  error?: string;
  errorType?: string;
}

async function api<T>(base: string, pathAndQuery: string): Promise<T> {
  const res = await fetch(`${base}${pathAndQuery}`, { signal: AbortSignal.timeout(30_000) });
  const body = (await res.json()) as ApiAnswer<T>;
  if (body.status !== 'success') throw new Error(`Prometheus ${pathAndQuery.split('?')[0]}: ${body.errorType ?? res.status}: ${body.error ?? 'no answer'}`);
  return body.data;
}

/**
 * A private Prometheus on a free loopback port, scraping each of `targets` (http://host:port/metrics)
 * every `scrapeSeconds`, keeping its data in a temporary directory removed when stopped.
 */
export async function startPrometheus(binary: string, targets: readonly string[], scrapeSeconds: number, log: (line: string) => void = () => undefined): Promise<PrometheusServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nstance-prometheus-'));
  const hosts = targets.map((t) => new URL(t));
  for (const h of hosts) if (h.pathname !== '/metrics') throw new Error(`scrape target ${h.href}: only /metrics paths are scraped`);
  const config = [
    'global:',
    `  scrape_interval: ${scrapeSeconds}s`,
    `  evaluation_interval: ${scrapeSeconds}s`,
    'scrape_configs:',
    '  - job_name: nstance',
    '    static_configs:',
    `      - targets: [${hosts.map((h) => JSON.stringify(h.host)).join(', ')}]`,
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'prometheus.yml'), `${config}\n`);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const logFile = path.join(dir, 'prometheus.log');
  const out = fs.openSync(logFile, 'a');
  const child: ChildProcess = spawn(binary, [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], { stdio: ['ignore', out, out] });
  fs.closeSync(out);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (child.exitCode === null) child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ready = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(2_000) }).then((r) => r.ok, () => false);
    if (ready) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      const tail = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').split('\n').slice(-20).join('\n') : '';
      await stop();
      throw new Error(`Prometheus did not become ready on ${url}:\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  log(`prometheus: ${url}, scraping ${targets.join(', ')} every ${scrapeSeconds}s`);
  return {
    url,
    async queryRange(expr, start, end, stepSeconds) {
      const q = new URLSearchParams({ query: expr, start: String(start / 1000), end: String(end / 1000), step: String(stepSeconds) });
      const data = await api<{ resultType: string; result: { metric: Record<string, string>; values: [number, string][] }[] }>(url, `/api/v1/query_range?${q}`);
      return data.result.map((r) => ({ labels: r.metric, points: r.values.map(([t, v]) => [t * 1000, Number(v)] as [number, number]) }));
    },
    async targets() {
      const data = await api<{ activeTargets: { scrapeUrl: string; health: string; lastError: string }[] }>(url, '/api/v1/targets');
      return data.activeTargets.map((t) => ({ url: t.scrapeUrl, health: t.health, lastError: t.lastError }));
    },
    stop,
  };
}
