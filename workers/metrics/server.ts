/**
 * The worker's /metrics: the domain's registry (and Node's process metrics) followed by
 * Temporal Core's own Prometheus text, read from its loopback listener at each scrape.
 * Core's metrics are prefixed `temporal_` and ours `nstance_`, process_ and nodejs_, so
 * the two never define the same family. If Core does not answer, its part is replaced by
 * `nstance_sdk_metrics_up 0` and the rest is still served.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface MetricsServerOptions {
  host: string;
  port: number;
  registry: Registry;
  /** Core's Prometheus endpoint, if it exports one. */
  sdkMetricsUrl?: string;
  sdkTimeoutMs?: number;
}

export interface MetricsServer {
  readonly port: number;
  close(): Promise<void>;
}

async function sdkText(url: string, timeoutMs: number): Promise<string> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const text = await res.text();
    return `# Temporal SDK (Core) metrics\n# TYPE nstance_sdk_metrics_up gauge\nnstance_sdk_metrics_up 1\n${text.endsWith('\n') ? text : `${text}\n`}`;
  } catch (err) {
    return `# Temporal SDK metrics unavailable at ${url}: ${(err as Error).message.replace(/\s+/g, ' ')}\n# TYPE nstance_sdk_metrics_up gauge\nnstance_sdk_metrics_up 0\n`;
  }
}

export async function renderMetrics(options: Pick<MetricsServerOptions, 'registry' | 'sdkMetricsUrl' | 'sdkTimeoutMs'>): Promise<string> {
  const [own, sdk] = await Promise.all([options.registry.metrics(), options.sdkMetricsUrl ? sdkText(options.sdkMetricsUrl, options.sdkTimeoutMs ?? 2_000) : Promise.resolve('')]);
  return `${own.endsWith('\n') || own === '' ? own : `${own}\n`}${sdk}`;
}

export function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || (path !== '/metrics' && path !== '/')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: scrape /metrics\n');
      return;
    }
    renderMetrics(options).then(
      (body) => res.writeHead(200, { 'content-type': options.registry.contentType }).end(body),
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${(err as Error).message}\n`),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`metrics server cannot listen on ${options.host}:${options.port}: ${err.message}`, { cause: err })));
    server.listen(options.port, options.host, () => {
      resolve({
        port: (server.address() as AddressInfo).port,
        close: () => new Promise<void>((done) => server.close(() => done())),
      });
    });
  });
}
