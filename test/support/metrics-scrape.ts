/**
 * Scraping /metrics in integration tests: the worker process's endpoint (metrics-scrape.test.ts, metrics-agents.test.ts),
 * or, for tests that run the worker and the agent API in-process, the same server
 * (workers/metrics/server.ts) over this process's domain registry, where their counters land.
 */
import { domainRegistry } from '../../adapters/metrics/domain-metrics';
import { startMetricsServer } from '../../workers/metrics/server';

export async function scrapeMetrics(url: string): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  if (res.status !== 200) throw new Error(`GET ${url}: HTTP ${res.status}`);
  return res.text();
}

/** The value of one sample (`name{labels} value`) whose labels include `labels`; undefined when absent. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[4]);
  }
  return undefined;
}

/** Serves this process's domain registry on a free loopback port, as a worker serves its own. */
export async function serveDomainMetrics(): Promise<{ url: string; close: () => Promise<void> }> {
  const server = await startMetricsServer({ host: '127.0.0.1', port: 0, registry: domainRegistry });
  return { url: `http://127.0.0.1:${server.port}/metrics`, close: () => server.close() };
}
