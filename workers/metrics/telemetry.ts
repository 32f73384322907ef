/**
 * Where the worker's metrics are served. `NSTANCE_METRICS_PORT` turns them on (unset: no
 * metrics server, and the SDK keeps its default telemetry): the worker serves /metrics on
 * NSTANCE_METRICS_HOST:NSTANCE_METRICS_PORT (default host 0.0.0.0), and Temporal Core,
 * which can only export Prometheus from a listener of its own, is bound on a loopback-only
 * address (NSTANCE_SDK_METRICS_ADDRESS, default 127.0.0.1:<metrics port + 1>) that
 * /metrics reads and appends. One scrape target then carries both, and Core's listener is
 * never exposed.
 */
import type { RuntimeOptions } from '@temporalio/worker';

export interface MetricsSettings {
  host: string;
  port: number;
  /** host:port Core's Prometheus exporter binds (loopback). */
  sdkBindAddress: string;
}

function port(name: string, raw: string): number {
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < 1 || value > 65535) throw new Error(`${name} must be a TCP port (1-65535), got "${raw}"`);
  return value;
}

export function metricsSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): MetricsSettings | undefined {
  const raw = env.NSTANCE_METRICS_PORT;
  if (raw === undefined || raw === '') return undefined;
  const metricsPort = port('NSTANCE_METRICS_PORT', raw);
  const sdkBindAddress = env.NSTANCE_SDK_METRICS_ADDRESS || `127.0.0.1:${metricsPort + 1}`;
  const match = /^(.+):(\d+)$/.exec(sdkBindAddress);
  if (!match) throw new Error(`NSTANCE_SDK_METRICS_ADDRESS must be host:port, got "${sdkBindAddress}"`);
  port('NSTANCE_SDK_METRICS_ADDRESS port', match[2]);
  return { host: env.NSTANCE_METRICS_HOST || '0.0.0.0', port: metricsPort, sdkBindAddress };
}

/** The Runtime options that make Core export its metrics (worker, client, poller, cache...) in Prometheus format. */
export function runtimeTelemetryOptions(settings: MetricsSettings): Pick<RuntimeOptions, 'telemetryOptions'> {
  return {
    telemetryOptions: {
      metrics: {
        prometheus: { bindAddress: settings.sdkBindAddress, countersTotalSuffix: true, unitSuffix: true, useSecondsForDurations: true },
        globalTags: { nstance: 'worker' },
      },
    },
  };
}

/** Where /metrics reads Core's text from. */
export function sdkMetricsUrl(settings: MetricsSettings): string {
  return `http://${settings.sdkBindAddress}/metrics`;
}
