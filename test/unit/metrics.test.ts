/**
 * The worker's /metrics: domain counters recorded from audit entries, AWS refusals counted
 * from the clients' error path, per-group gauges read lazily (cached, leader-only), and
 * Temporal Core's text appended from its loopback listener.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { Registry } from 'prom-client';
import { instrumentAwsClients } from '../../adapters/metrics/aws-errors';
import { boundedLabel, domainRegistry, knownGroup, recordAudit, recordGcAction } from '../../adapters/metrics/domain-metrics';
import type { AwsClients } from '../../adapters/aws/clients';
import type { GroupStatus } from '../../common/types';
import { GroupGauges } from '../../workers/metrics/group-gauges';
import { renderMetrics, startMetricsServer } from '../../workers/metrics/server';
import { metricsSettingsFromEnv, runtimeTelemetryOptions } from '../../workers/metrics/telemetry';

async function value(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return undefined;
  const { values } = await metric.get();
  const found = values.find((v) => Object.entries(labels).every(([k, l]) => String(v.labels[k]) === l) && (v as { metricName?: string }).metricName !== `${name}_bucket`);
  return found?.value;
}

describe('domain counters from audit entries', () => {
  const at = '2026-12-01T00:00:00.000Z';

  it("has a known group's series from 0, so rate() sees its first failure rise, and never resets them", async () => {
    const labels = { tenant: 'm0', group: 'batch' };
    expect(await value(domainRegistry, 'nstance_instance_failures_total', { ...labels, reason: 'launch-failed' })).toBeUndefined();
    knownGroup(labels.tenant, labels.group);
    const text = await domainRegistry.metrics();
    for (const reason of ['launch-failed', 'registration-timeout', 'target-registration-failed']) expect(text).toContain(`nstance_instance_failures_total{tenant="m0",group="batch",reason="${reason}"} 0`);
    expect(text).toContain('nstance_instance_terminations_total{tenant="m0",group="batch",reason="drift"} 0');
    expect(text).toContain('nstance_instance_launches_total{tenant="m0",group="batch",adopted="false"} 0');
    recordAudit({ shard: 's', action: 'instance.failed', actor: 'nstance', at, tenant: 'm0', group: 'batch', details: { reason: 'RunInstances: InvalidParameterValue' } });
    knownGroup(labels.tenant, labels.group);
    expect(await value(domainRegistry, 'nstance_instance_failures_total', { ...labels, reason: 'launch-failed' })).toBe(1);
    // The collector's actions are there from the start too.
    expect(await value(domainRegistry, 'nstance_gc_actions_total', { action: 'duplicate-terminated' })).toBe(0);
  });

  it('counts launches, terminations by reason and failures by kind', async () => {
    const before = (await value(domainRegistry, 'nstance_instance_terminations_total', { tenant: 'm1', group: 'web', reason: 'scale-down' })) ?? 0;
    recordAudit({ shard: 's', action: 'instance.create', actor: 'nstance', at, tenant: 'm1', group: 'web', details: { adopted: false } });
    recordAudit({ shard: 's', action: 'instance.terminate', actor: 'nstance', at, tenant: 'm1', group: 'web', details: { reason: 'scale-down' } });
    recordAudit({ shard: 's', action: 'instance.terminate', actor: 'nstance', at, tenant: 'm1', group: 'web', details: { reason: 'scale-down' } });
    recordAudit({ shard: 's', action: 'instance.registration-timeout', actor: 'nstance', at, tenant: 'm1', group: 'web', details: { reason: 'agent did not register within 300s' } });
    recordAudit({ shard: 's', action: 'instance.failed', actor: 'nstance', at, tenant: 'm1', group: 'web', details: { reason: 'could not register in its target groups: boom' } });
    expect(await value(domainRegistry, 'nstance_instance_launches_total', { tenant: 'm1', group: 'web', adopted: 'false' })).toBe(1);
    expect(await value(domainRegistry, 'nstance_instance_terminations_total', { tenant: 'm1', group: 'web', reason: 'scale-down' })).toBe(before + 2);
    expect(await value(domainRegistry, 'nstance_instance_failures_total', { tenant: 'm1', group: 'web', reason: 'registration-timeout' })).toBe(1);
    expect(await value(domainRegistry, 'nstance_instance_failures_total', { tenant: 'm1', group: 'web', reason: 'target-registration-failed' })).toBe(1);
  });

  it("counts each instance of a start batch's creation entry", async () => {
    const instances = { a: { ec2InstanceId: 'i-a', adopted: false }, b: { ec2InstanceId: 'i-b', adopted: false }, c: { ec2InstanceId: 'i-c', adopted: true } };
    recordAudit({ shard: 's', action: 'instance.create', actor: 'nstance', at, tenant: 'm2', group: 'web', instanceIds: ['a', 'b', 'c'], details: { instances } });
    expect(await value(domainRegistry, 'nstance_instance_launches_total', { tenant: 'm2', group: 'web', adopted: 'false' })).toBe(2);
    expect(await value(domainRegistry, 'nstance_instance_launches_total', { tenant: 'm2', group: 'web', adopted: 'true' })).toBe(1);
  });

  it('observes handoff durations in seconds and counts GC terminations', async () => {
    recordAudit({ shard: 's', action: 'leader-handoff', actor: 'leader-workflow', at, details: { reason: 'heartbeat-timeout', durationMs: 5_900 } });
    recordAudit({ shard: 's', action: 'gc.terminate', actor: 'garbage-collector', at, details: { why: 'no workflow' } });
    const text = await domainRegistry.metrics();
    expect(text).toContain('nstance_leader_handoff_duration_seconds_sum{reason="heartbeat-timeout"} 5.9');
    expect(text).toMatch(/nstance_leader_handoff_duration_seconds_bucket\{le="7.5",reason="heartbeat-timeout"\} 1/);
    expect(text).toMatch(/nstance_gc_terminations_total \d+/);
  });

  it('counts every GC action by kind: orphans by why, refusals, records deleted', async () => {
    const actions = ['orphan-terminated', 'duplicate-terminated', 'untagged-terminated', 'termination-refused', 'record-deleted'];
    const before = Object.fromEntries(await Promise.all(actions.map(async (action) => [action, (await value(domainRegistry, 'nstance_gc_actions_total', { action })) ?? 0])));
    const gc = (details: Record<string, unknown>) => recordAudit({ shard: 's', action: 'gc.terminate', actor: 'garbage-collector', at, details });
    gc({ why: 'no running workflow owns web-1', kind: 'orphan' });
    gc({ why: "a duplicate: web-2's workflow runs i-2", kind: 'duplicate' });
    gc({ why: 'no nstance:instance-id tag', kind: 'untagged' });
    // An entry from before kinds were audited, and one of a kind no code defines.
    gc({ why: 'no running workflow owns web-3' });
    gc({ why: 'x', kind: 'made up' });
    recordGcAction('termination-refused', 2);
    recordGcAction('record-deleted', 7);
    recordGcAction('record-deleted', 0);
    const after = Object.fromEntries(await Promise.all(actions.map(async (action) => [action, ((await value(domainRegistry, 'nstance_gc_actions_total', { action })) ?? 0) - before[action]])));
    expect(after).toEqual({ 'orphan-terminated': 3, 'duplicate-terminated': 1, 'untagged-terminated': 1, 'termination-refused': 2, 'record-deleted': 7 });
  });

  it('keeps free text out of labels', () => {
    expect(boundedLabel('expired-forced')).toBe('expired-forced');
    expect(boundedLabel('agent did not register within 300s')).toBe('other');
    expect(boundedLabel(undefined)).toBe('other');
  });
});

describe('AWS refusals', () => {
  it('counts a throttled request once, by service, operation and code, and rethrows it', async () => {
    const ec2 = new EC2Client({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' }, maxAttempts: 1 });
    // Stands in for EC2 (or the tests' fault layer, also in the initialize step) refusing the request.
    ec2.middlewareStack.add(
      () => async () => {
        throw Object.assign(new Error('Request limit exceeded.'), { name: 'RequestLimitExceeded' });
      },
      { step: 'initialize', name: 'refuse' },
    );
    instrumentAwsClients({ ec2 } as unknown as AwsClients);
    instrumentAwsClients({ ec2 } as unknown as AwsClients);
    const labels = { service: 'EC2', operation: 'DescribeInstances', kind: 'throttle', code: 'RequestLimitExceeded' };
    const before = (await value(domainRegistry, 'nstance_aws_errors_total', labels)) ?? 0;
    await expect(ec2.send(new DescribeInstancesCommand({}))).rejects.toThrow('Request limit exceeded.');
    expect(await value(domainRegistry, 'nstance_aws_errors_total', labels)).toBe(before + 1);
    ec2.destroy();
  });

  it('has the series an alert needs at 0 before their first event: capacity and throttles of the launch path, each handoff reason', async () => {
    const text = await domainRegistry.metrics();
    expect(text).toMatch(/^nstance_aws_errors_total\{service="EC2",operation="RunInstances",kind="capacity",code="InsufficientInstanceCapacity"\} 0$/m);
    expect(text).toMatch(/^nstance_aws_errors_total\{service="EC2",operation="RunInstances",kind="throttle",code="RequestLimitExceeded"\} 0$/m);
    expect(text).toMatch(/^nstance_aws_errors_total\{service="ElasticLoadBalancingV2",operation="RegisterTargets",kind="throttle",code="Throttling"\} 0$/m);
    expect(text).toMatch(/^nstance_leader_handoffs_total\{reason="lease-lost"\} 0$/m);
    expect(text).toMatch(/^nstance_leader_handoff_duration_seconds_count\{reason="lease-lost"\} 0$/m);
  });
});

function status(group: string, counts: Partial<GroupStatus>): GroupStatus {
  return { shard: 's', tenant: 'default', group, desired: 3, running: 3, pending: 0, draining: 0, inService: 3, unhealthy: 0, total: 3, members: [], configured: true, ...counts };
}

describe('per-group gauges', () => {
  it('reads the statuses once per scrape window, and drops groups that are gone', async () => {
    const registry = new Registry();
    let reads = 0;
    let now = 0;
    let statuses = [status('web', { desired: 5, running: 4, pending: 1, unhealthy: 1 }), status('api', {})];
    new GroupGauges({ registry, read: async () => (reads++, statuses), reporting: () => true, maxAgeMs: 15_000, now: () => now });
    const text = await registry.metrics();
    expect(reads).toBe(1);
    expect(text).toContain('nstance_group_desired{shard="s",tenant="default",group="web"} 5');
    expect(text).toContain('nstance_group_running{shard="s",tenant="default",group="web"} 4');
    expect(text).toContain('nstance_group_pending{shard="s",tenant="default",group="web"} 1');
    expect(text).toContain('nstance_group_unhealthy{shard="s",tenant="default",group="web"} 1');
    expect(text).toContain('nstance_group_in_service{shard="s",tenant="default",group="api"} 3');
    now = 10_000;
    await registry.metrics();
    expect(reads).toBe(1);
    statuses = [status('web', { desired: 5 })];
    now = 16_000;
    const later = await registry.metrics();
    expect(reads).toBe(2);
    expect(later).not.toContain('group="api"');
  });

  it('reports nothing on a worker that does not lead', async () => {
    const registry = new Registry();
    let reads = 0;
    new GroupGauges({ registry, read: async () => (reads++, [status('web', {})]), reporting: () => false });
    expect(await registry.metrics()).not.toContain('group="web"');
    expect(reads).toBe(0);
  });

  it('keeps the last values and flags the error when a read fails', async () => {
    const registry = new Registry();
    let now = 0;
    let fail = false;
    new GroupGauges({ registry, read: async () => { if (fail) throw new Error('query timed out'); return [status('web', {})]; }, reporting: () => true, maxAgeMs: 1, now: () => now });
    await registry.metrics();
    fail = true;
    now = 10;
    const text = await registry.metrics();
    expect(text).toContain('nstance_group_desired{shard="s",tenant="default",group="web"} 3');
    expect(text).toContain('nstance_group_status_errors 1');
  });
});

describe('/metrics', () => {
  it("serves the domain's metrics followed by Core's, and says when Core does not answer", async () => {
    const core = http.createServer((_req, res) => res.end('# TYPE temporal_worker_start_total counter\ntemporal_worker_start_total{namespace="default"} 1\n'));
    await new Promise<void>((r) => core.listen(0, '127.0.0.1', r));
    const coreUrl = `http://127.0.0.1:${(core.address() as AddressInfo).port}/metrics`;
    const registry = new Registry();
    const server = await startMetricsServer({ host: '127.0.0.1', port: 0, registry, sdkMetricsUrl: coreUrl });
    try {
      recordAudit({ shard: 's', action: 'gc.terminate', actor: 'gc', at: '2026-12-01T00:00:00.000Z' });
      const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
      expect(res.headers.get('content-type')).toContain('text/plain');
      const text = await res.text();
      expect(text).toContain('temporal_worker_start_total{namespace="default"} 1');
      expect(text).toContain('nstance_sdk_metrics_up 1');
      expect((await fetch(`http://127.0.0.1:${server.port}/other`)).status).toBe(404);
    } finally {
      await server.close();
      await new Promise<void>((r) => core.close(() => r()));
    }
    const without = await renderMetrics({ registry, sdkMetricsUrl: coreUrl, sdkTimeoutMs: 500 });
    expect(without).toContain('nstance_sdk_metrics_up 0');
  });

  it('is configured from the environment, Core bound on loopback', () => {
    expect(metricsSettingsFromEnv({})).toBeUndefined();
    const settings = metricsSettingsFromEnv({ NSTANCE_METRICS_PORT: '9464' });
    expect(settings).toEqual({ host: '0.0.0.0', port: 9464, sdkBindAddress: '127.0.0.1:9465' });
    expect(runtimeTelemetryOptions(settings!).telemetryOptions?.metrics).toMatchObject({ prometheus: { bindAddress: '127.0.0.1:9465' } });
    expect(() => metricsSettingsFromEnv({ NSTANCE_METRICS_PORT: 'abc' })).toThrow('NSTANCE_METRICS_PORT must be a TCP port');
  });
});
