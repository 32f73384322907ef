/**
 * The worker's /metrics, scraped during real scenarios on a shard run by a real `nstance worker`
 * process, against what really happened: EC2's instances, the group's own members, the audit log
 * and the fault proxy's count of what it refused. The group gauges are read at most every 15 s,
 * so every state whose gauge is checked lasts longer than that.
 */
import { RunInstancesCommand } from '@aws-sdk/client-ec2';
import { groupWorkflowId, TAG } from '../../common/names';
import { groupStatus } from '../../client/ops/status';
import { chartPanels, metricNames, readDashboard } from '../../scripts/dashboard/panels';
import { eventually, listKeys, shardInstances } from '../support/emulator';
import { sample } from '../support/metrics-scrape';
import { useObservedShard } from '../support/observed-shard';

jest.setTimeout(240_000);

const o = useObservedShard('scrape');
const { shard, ref, ui } = o;
const labels = { shard, tenant: 'default', group: 'web' };
const ours = { tenant: 'default', group: 'web' };
/** What the fault proxy answered an EC2 action so far, by outcome ("throttled", an error code, "ok"). */
const given = (action: string) => o.stack.proxy.census.snapshot().actions[`ec2:${action}`]?.outcomes ?? {};
const scale = (size: number) => o.stack.cli(['group', 'scale', 'default/web', String(size), '--bucket', o.stack.h.bucket, '--ui-url', ui]);

test("a scrape of the worker's /metrics matches EC2, and carries the SDK's runtime metrics and every metric the dashboard asks for", async () => {
  const { stack } = o;
  const ec2 = await o.groupInstancesInEc2();
  expect(ec2.running).toBe(2);
  const text = await eventually('the group gauges to show 2 in service', async () => {
    const t = await o.scrape();
    return sample(t, 'nstance_group_in_service', labels) === 2 ? t : undefined;
  }, 30_000, 1_000);
  expect(sample(text, 'nstance_group_desired', labels)).toBe(2);
  expect(sample(text, 'nstance_group_running', labels)).toBe(ec2.running);
  expect(sample(text, 'nstance_group_pending', labels)).toBe(0);
  expect(sample(text, 'nstance_group_draining', labels)).toBe(0);
  expect(sample(text, 'nstance_group_unhealthy', labels)).toBe(0);
  // Every instance EC2 ever held for the group was launched once, and counted once.
  expect(sample(text, 'nstance_instance_launches_total', { ...ours, adopted: 'false' })).toBe(ec2.all);
  expect(sample(text, 'nstance_leader', {})).toBe(1);
  expect(sample(text, 'nstance_leader_epoch', {})).toBe(o.epoch);
  expect(sample(text, 'nstance_leader_handoffs_total', { reason: 'initial' })).toBe(1);
  expect(sample(text, 'nstance_leader_handoff_duration_seconds_count', { reason: 'initial' })).toBe(1);
  // Temporal Core's own metrics, from its loopback exporter, in the same scrape.
  expect(sample(text, 'nstance_sdk_metrics_up', {})).toBe(1);
  expect(text).toMatch(/^temporal_\w+/m);
  expect(text).toMatch(/^temporal_workflow_completed_total|^temporal_worker_start_total|^temporal_request_total/m);
  // Every metric docs/grafana-dashboard.json queries is served (declared, if nothing counted it yet). Core declares a
  // metric only once it records one, and these two count failed requests to Temporal, which a healthy run makes none of.
  const declared = new Set([...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1] as string));
  const lazy = new Set(['temporal_request_failure_total', 'temporal_long_request_failure_total']);
  const dashboard = readDashboard();
  const asked = new Set(chartPanels(dashboard).flatMap((p) => (p.targets ?? []).flatMap((t) => metricNames(t.expr))));
  const missing = [...asked].filter((name) => !lazy.has(name) && !declared.has(name) && !declared.has(name.replace(/_(bucket|sum|count)$/, '')));
  expect(missing).toEqual([]);

  // Scale down through the CLI while EC2 throttles terminations: the leaving member stays in EC2, retried, and the
  // draining gauge shows it there; then EC2 terminates it, and the counters and gauges follow.
  const throttledBefore = given('TerminateInstances').throttled ?? 0;
  const countedBefore = sample(await o.scrape(), 'nstance_aws_errors_total', { operation: 'TerminateInstances', kind: 'throttle', code: 'RequestLimitExceeded' }) ?? 0;
  stack.proxy.injectError('TerminateInstances', 'RequestLimitExceeded', 5);
  const scaled = await scale(1);
  expect(scaled).toContain(`Web UI: ${ui}/namespaces/default/workflows/${encodeURIComponent(groupWorkflowId(shard, 'default', 'web'))}/`);
  const draining = await eventually('the scrape to show the leaving member draining', async () => {
    const t = await o.scrape();
    if (sample(t, 'nstance_group_draining', labels) !== 1) return undefined;
    const [inEc2, status] = [await o.groupInstancesInEc2(), await groupStatus(stack.h.client, ref)];
    return { text: t, inEc2, leaving: status.members.filter((m) => m.leaving && m.phase !== 'terminated') };
  }, 45_000, 1_000);
  // Draining for real: the group is letting one member go, and EC2 still runs it.
  expect(draining.leaving).toHaveLength(1);
  expect(draining.inEc2.running).toBe(2);
  expect(draining.inEc2.runningIds).toContain(draining.leaving[0]?.ec2InstanceId);
  expect(sample(draining.text, 'nstance_group_running', labels)).toBe(1);
  expect(sample(draining.text, 'nstance_group_desired', labels)).toBe(1);

  await eventually('EC2 to hold one running instance of the group', async () => ((await o.groupInstancesInEc2()).running === 1 && (await shardInstances(stack.h.aws.ec2, shard)).length === 1 ? true : undefined), 90_000);
  const after = await o.groupInstancesInEc2();
  const later = await eventually('the gauges to show 1 running, none draining, and the termination counted', async () => {
    const t = await o.scrape();
    return sample(t, 'nstance_group_running', labels) === 1 && sample(t, 'nstance_group_draining', labels) === 0 && sample(t, 'nstance_instance_terminations_total', { ...ours, reason: 'scale-down' }) === 1 ? t : undefined;
  }, 45_000, 1_000);
  expect(sample(later, 'nstance_group_desired', labels)).toBe(1);
  expect(after.terminated).toBe(1);
  // Each throttled termination EC2 gave was counted once.
  const throttled = (given('TerminateInstances').throttled ?? 0) - throttledBefore;
  expect(throttled).toBe(5);
  expect((sample(later, 'nstance_aws_errors_total', { operation: 'TerminateInstances', kind: 'throttle', code: 'RequestLimitExceeded' }) ?? 0) - countedBefore).toBe(throttled);
});

test("the garbage collector counts each kind of action it takes: an orphan terminated, an ended instance's record deleted", async () => {
  const { stack } = o;
  // The scaled-down instance's record: deleted once past the retention, and counted.
  const records = () => listKeys(stack.h.aws.s3, stack.h.bucket, `shard/${shard}/instance/`);
  const member = await eventually('the scaled-down member forgotten', async () => {
    const s = await groupStatus(stack.h.client, ref);
    return s.total === 1 ? s.members[0] : undefined;
  }, 30_000);
  const kept = `shard/${shard}/instance/default.${member.instanceId}.json`;
  let seen: string[] = [];
  await eventually('only the remaining member keeps a record', async () => {
    seen = await records();
    return seen.length === 1 && seen[0] === kept ? seen : undefined;
  }, 60_000).catch((err: Error) => {
    throw new Error(`${err.message} (records: ${seen.join(', ') || 'none'}; kept: ${kept})`);
  });
  // An instance tagged for the shard that no workflow owns, as a crashed launcher leaves one.
  const run = await stack.h.aws.ec2.send(
    new RunInstancesCommand({
      ImageId: stack.seed.imageId,
      InstanceType: 'm7g.large',
      SubnetId: stack.seed.subnetIds[0],
      MinCount: 1,
      MaxCount: 1,
      TagSpecifications: [
        {
          ResourceType: 'instance',
          Tags: [
            { Key: TAG.instanceId, Value: 'web-orphanobs0001' },
            { Key: TAG.clusterId, Value: 'test' },
            { Key: TAG.shard, Value: shard },
            { Key: TAG.managed, Value: 'true' },
          ],
        },
      ],
    }),
  );
  const orphan = run.Instances?.[0]?.InstanceId as string;
  await eventually('EC2 to show the orphan terminated', async () => ((await shardInstances(stack.h.aws.ec2, shard, ['shutting-down', 'terminated'])).some((i) => i.InstanceId === orphan) ? true : undefined), 60_000);
  const text = await eventually('the scrape to count the orphan terminated', async () => {
    const t = await o.scrape();
    return sample(t, 'nstance_gc_actions_total', { action: 'orphan-terminated' }) === 1 ? t : undefined;
  }, 30_000, 1_000);
  expect(sample(text, 'nstance_gc_terminations_total')).toBe(1);
  // One record of an ended instance existed (the scaled-down one), and it was deleted: at least once, as
  // a pass that deleted it may have been retried.
  expect(sample(text, 'nstance_gc_actions_total', { action: 'record-deleted' })).toBeGreaterThanOrEqual(1);
  for (const action of ['duplicate-terminated', 'untagged-terminated', 'termination-refused']) expect(sample(text, 'nstance_gc_actions_total', { action }) ?? 0).toBe(0);
});

// A launch refused for capacity, then throttled, by the fault proxy in front of EC2 (the worker's activity
// clients make one SDK attempt, so each refusal reaches the middleware that counts it), then let through.
test('the capacity and throttle refusals EC2 gave a launch are counted by kind and code, and the group still grows', async () => {
  const { stack } = o;
  const counted = (t: string, kind: string, code: string) => sample(t, 'nstance_aws_errors_total', { operation: 'RunInstances', kind, code }) ?? 0;
  const before = { text: await o.scrape(), given: given('RunInstances') };
  const size = (await groupStatus(stack.h.client, ref, { limit: 0 })).desired + 1;
  stack.proxy.injectError('RunInstances', 'InsufficientInstanceCapacity');
  stack.proxy.injectError('RunInstances', 'RequestLimitExceeded');
  await scale(size);
  await eventually(`EC2 to run ${size} of the group`, async () => ((await o.groupInstancesInEc2()).running === size ? true : undefined), 90_000);
  const after = given('RunInstances');
  const refused = (code: string) => (after[code] ?? 0) - (before.given[code] ?? 0);
  expect([refused('InsufficientInstanceCapacity'), refused('throttled')]).toEqual([1, 1]);
  let last = '';
  const text = await eventually('the scrape to count both refusals', async () => {
    const t = (last = await o.scrape());
    return counted(t, 'capacity', 'InsufficientInstanceCapacity') > counted(before.text, 'capacity', 'InsufficientInstanceCapacity') && counted(t, 'throttle', 'RequestLimitExceeded') > counted(before.text, 'throttle', 'RequestLimitExceeded') ? t : undefined;
  }, 30_000, 1_000).catch((err: Error) => {
    throw new Error(`${err.message}; nstance_aws_errors_total now: ${last.split('\n').filter((l) => l.startsWith('nstance_aws_errors_total')).join('; ') || 'none'}`);
  });
  // Exactly what EC2 refused: one of each.
  expect(counted(text, 'capacity', 'InsufficientInstanceCapacity') - counted(before.text, 'capacity', 'InsufficientInstanceCapacity')).toBe(refused('InsufficientInstanceCapacity'));
  expect(counted(text, 'throttle', 'RequestLimitExceeded') - counted(before.text, 'throttle', 'RequestLimitExceeded')).toBe(refused('throttled'));
  await eventually(`the gauges to show ${size} running`, async () => (sample(await o.scrape(), 'nstance_group_running', labels) === size ? true : undefined), 30_000, 1_000);
});

// A launch EC2 refuses outright (InvalidParameterValue: not retried into success), twice: whichever instance
// workflow meets the refusal fails, is audited `instance.failed` and replaced, and the scrape counts each failure.
test('a launch EC2 refuses fails its instance, and nstance_instance_failures_total counts each failure the audit log records', async () => {
  const { stack } = o;
  const failures = (t: string) => sample(t, 'nstance_instance_failures_total', { ...ours, reason: 'launch-failed' }) ?? 0;
  const failedAudits = async () => (await o.audits('instance.failed')).filter((e) => e.group === 'web' && e.tenant === 'default');
  const before = { text: await o.scrape(), audits: (await failedAudits()).length, refused: given('RunInstances').InvalidParameterValue ?? 0 };
  expect(failures(before.text)).toBe(before.audits);
  const size = (await groupStatus(stack.h.client, ref, { limit: 0 })).desired + 1;
  stack.proxy.injectError('RunInstances', 'InvalidParameterValue', 2);
  await scale(size);
  await eventually(`EC2 to run ${size} of the group`, async () => ((await o.groupInstancesInEc2()).running === size ? true : undefined), 120_000);
  expect((given('RunInstances').InvalidParameterValue ?? 0) - before.refused).toBe(2);
  const failed = (await failedAudits()).slice(before.audits);
  expect(failed.length).toBeGreaterThanOrEqual(1);
  for (const f of failed) expect(String(f.details?.reason)).toContain('InvalidParameterValue');
  const text = await eventually('the scrape to count every failure audited', async () => {
    const t = await o.scrape();
    return failures(t) - failures(before.text) === failed.length ? t : undefined;
  }, 30_000, 1_000);
  // Nothing else failed, and the group serves its new size all the same.
  for (const reason of ['registration-timeout', 'target-registration-failed']) expect(sample(text, 'nstance_instance_failures_total', { ...ours, reason }) ?? 0).toBe(0);
  await eventually(`the gauges to show ${size} running`, async () => (sample(await o.scrape(), 'nstance_group_running', labels) === size ? true : undefined), 30_000, 1_000);
});
