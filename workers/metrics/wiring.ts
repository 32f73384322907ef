/**
 * The worker's metrics, assembled: the domain registry (adapters/metrics), Node's process
 * metrics, the per-group gauges, the leadership gauges, and the /metrics server that
 * appends Temporal Core's metrics. workers/worker.ts calls `startWorkerMetrics` once.
 */
import type { Client } from '@temporalio/client';
import { Runtime } from '@temporalio/worker';
import { collectDefaultMetrics } from 'prom-client';
import { domainRegistry, knownGroup, leaderEpochGauge, leaderGauge } from '../../adapters/metrics/domain-metrics';
import { groupStatuses } from '../../client/ops/status';
import type { LeadershipGate } from '../leadership/gate';
import { GroupGauges } from './group-gauges';
import { startMetricsServer, type MetricsServer } from './server';
import { runtimeTelemetryOptions, sdkMetricsUrl, type MetricsSettings } from './telemetry';

export interface WorkerMetricsOptions {
  settings: MetricsSettings;
  client: Client;
  shard: string;
  /** Leadership's gate; absent when leadership is off (then this worker reports the group gauges). */
  gate?: LeadershipGate;
  log: (line: string) => void;
}

/**
 * Installs the Runtime with Core's Prometheus exporter: call before any connection is made.
 * `shutdownSignals: []` when leadership runs (it owns SIGINT/SIGTERM, see participant.ts).
 */
export function installRuntimeWithMetrics(settings: MetricsSettings, options: { withoutSignalHandlers: boolean }): void {
  Runtime.install({ ...runtimeTelemetryOptions(settings), ...(options.withoutSignalHandlers ? { shutdownSignals: [] } : {}) });
}

let defaultsCollected = false;

export async function startWorkerMetrics(options: WorkerMetricsOptions): Promise<MetricsServer> {
  if (!defaultsCollected) {
    defaultsCollected = true;
    collectDefaultMetrics({ register: domainRegistry });
  }
  const { gate } = options;
  const reporting = () => gate === undefined || gate.state.leader;
  if (!domainRegistry.getSingleMetric('nstance_group_desired')) {
    new GroupGauges({
      registry: domainRegistry,
      read: async () => {
        const statuses = await groupStatuses(options.client, options.shard);
        for (const s of statuses) knownGroup(s.tenant, s.group);
        return statuses;
      },
      reporting,
      onError: (err) => options.log(`metrics: reading the groups' status failed: ${(err as Error).message}`),
    });
  }
  const updateLeader = () => {
    const state = gate?.state ?? { leader: true };
    leaderGauge.set(state.leader ? 1 : 0);
    if (state.epoch !== undefined) leaderEpochGauge.set(state.epoch);
  };
  updateLeader();
  gate?.onChange(updateLeader);
  const server = await startMetricsServer({ host: options.settings.host, port: options.settings.port, registry: domainRegistry, sdkMetricsUrl: sdkMetricsUrl(options.settings) });
  options.log(`metrics: serving http://${options.settings.host}:${server.port}/metrics (Temporal SDK metrics from ${options.settings.sdkBindAddress})`);
  return server;
}
