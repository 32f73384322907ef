/**
 * A 100-instance scale-up goes through the batched paths: instances are launched and their
 * workflows started in batches that carry the launch spec once, and EC2 is observed by batched
 * describes rather than one poll per instance (read back from the fault layer's log of every AWS call).
 */
import type { Payload } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { commandInstance } from '../../client/ops/instance';
import { groupStatus, waitForConvergence } from '../../client/ops/status';
import { groupWorkflowId, instanceWorkflowId } from '../../common/names';
import { recordHistory } from '../support/record-histories';
import type { InstanceBatch } from '../../adapters/temporal/instance-batch';
import { LAUNCH_BATCH } from '../../workflows/group-actions';
import { eventually } from '../support/emulator';
import { auditedCreations, readAuditLog } from '../support/audit-log';
import { Worker } from '@temporalio/worker';
import { workflowBundle } from '../support/harness';
import { useShard } from '../support/shard-fixture';
import { decodedPayload } from '../support/payloads';
import { nstanceDataConverter } from '../../adapters/temporal/data-converter';

const fx = useShard('bat', { worker: true, registrar: true });
const { ref } = fx;
const SIZE = 100;

/** Every run of the group workflow (it continues as new often in tests), with its history. */
async function groupRuns(): Promise<{ workflowId: string; runId: string; history: temporal.api.history.v1.IHistory }[]> {
  const workflowId = groupWorkflowId(ref.shard, ref.tenant, ref.group);
  const runs: { workflowId: string; runId: string; history: temporal.api.history.v1.IHistory }[] = [];
  for await (const run of fx.client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
    runs.push({ workflowId, runId: run.runId, history: await fx.client.workflow.getHandle(workflowId, run.runId).fetchHistory() });
  }
  return runs;
}

test(`a ${SIZE}-instance scale-up starts instances in batches with one spec each and observes EC2 in batches`, async () => {
  // Each instance boots for a while, as in EC2: one poll per instance per interval would add up.
  fx.faults.holdPending(5000);
  const mark = fx.faults.calls.length;
  await fx.apply({ size: SIZE, reconcileInterval: '5s' });
  await waitForConvergence(fx.client, ref, { timeoutMs: 600_000, size: SIZE, pollMs: 1000 });
  await eventually('all in service', async () => ((await groupStatus(fx.client, ref, { limit: 0 })).inService === SIZE ? true : undefined), 120_000, 1000);
  const calls = fx.faults.calls.slice(mark);
  const launched = calls.filter((c) => c.command === 'RunInstances' && c.outcome === 'ok').length;
  expect(launched).toBe(SIZE);

  // EC2 is observed in batches: at most 3 DescribeInstances per instance launched (one poll each would be dozens).
  const describes = calls.filter((c) => c.command === 'DescribeInstances').length;
  expect(describes).toBeLessThanOrEqual(3 * launched);

  // Starts went in batches: each activity carries the launch spec once and a list of instance ids.
  const runs = await groupRuns();
  const scheduled = runs.flatMap((r) => r.history.events ?? []).flatMap((e) => (e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes] : []));
  const batches = await Promise.all(scheduled.filter((a) => a.activityType?.name === 'startInstanceBatch').map((a) => decodedPayload<InstanceBatch>(fx.client, a.input?.payloads as Payload[])));
  expect(scheduled.filter((a) => a.activityType?.name === 'startInstanceWorkflows')).toEqual([]);
  expect(batches.length).toBeGreaterThanOrEqual(Math.ceil(SIZE / LAUNCH_BATCH));
  const started = new Set(batches.flatMap((b) => b.instanceIds));
  expect(started.size).toBe(SIZE);
  for (const b of batches) {
    expect(b.instanceIds.length).toBeLessThanOrEqual(LAUNCH_BATCH);
    expect(b.common.launch.kind).toBe('web');
    // The spec is in the batch once, not once per instance.
    expect(JSON.stringify(b).split('"subnetPool"').length - 1).toBe(1);
  }
  // The batches launched their instances themselves: no instance workflow chose a subnet or launched on its own.
  expect(batches.every((b) => b.launchFirst === true)).toBe(true);
  const instanceActivities = new Map<string, number>();
  for await (const wf of fx.client.workflow.list({ query: `NstanceShard = '${ref.shard}' AND WorkflowType = 'instanceWorkflow'` })) {
    const history = await fx.client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
    for (const e of history.events ?? []) {
      const name = e.activityTaskScheduledEventAttributes?.activityType?.name;
      if (name) instanceActivities.set(name, (instanceActivities.get(name) ?? 0) + 1);
    }
  }
  expect(instanceActivities.get('launchInstance') ?? 0).toBe(0);
  expect(instanceActivities.get('selectSubnet') ?? 0).toBe(0);
  // Nor did one audit its creation or wait for EC2 to show it running: each batch audited its launches in one
  // entry, and its agent's registration showed it running.
  expect(instanceActivities.get('writeAudit') ?? 0).toBe(0);
  expect(instanceActivities.get('awaitInstanceState') ?? 0).toBe(0);
  const audit = await readAuditLog(fx.aws.s3, fx.bucket, ref.shard);
  const creations = auditedCreations(audit);
  expect(creations).toHaveLength(SIZE);
  expect(new Set(creations.map((c) => c.instanceId))).toEqual(started);
  expect(audit.filter((e) => e.action === 'instance.create').length).toBeLessThanOrEqual(batches.length);
  recordHistory(groupWorkflowId(ref.shard, ref.tenant, ref.group), 'group-takeover-once');
  recordHistory(instanceWorkflowId(ref.shard, [...started][0] as string), 'instance-launch-reported');
  const status = await groupStatus(fx.client, ref, { limit: 0 });
  expect(status.diagnostics?.carriedStateBytes).toBeLessThan(30_000);
  await fx.expectEmulatorMatchesGroups();

  // Every run of a busy group (hundreds of signals, queries all along) replays on another worker: no nondeterminism.
  const failures: string[] = [];
  for await (const result of Worker.runReplayHistories({ workflowBundle: await workflowBundle(), dataConverter: nstanceDataConverter(), replayName: 'group-batches' }, runs)) {
    if (result.error) failures.push(`${result.runId}: ${result.error.message}`);
  }
  expect(failures).toEqual([]);
});

test('a start batch held up in EC2 does not hold up the passes: a drain asked meanwhile is delivered before the batch ends', async () => {
  await fx.apply({ size: 2, reconcileInterval: '5s' });
  await waitForConvergence(fx.client, ref, { timeoutMs: 300_000, size: 2, pollMs: 500 });
  const [oldest] = (await groupStatus(fx.client, ref)).members;
  // The next launch waits in EC2 until released: the batch it belongs to cannot end before that.
  let release = () => undefined as void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let heldCalls = 0;
  let launchWent = false;
  fx.faults.before('RunInstances', async () => {
    heldCalls++;
    await held;
    launchWent = true;
  });
  try {
    await fx.scale(3);
    await eventually('the launch to be held', async () => (heldCalls > 0 ? true : undefined), 60_000, 200);
    await commandInstance(fx.client, ref.shard, oldest.instanceId, 'drain', 'test');
    // Delivered (the member leaving, or already gone) while the batch's launch was still waiting in EC2.
    const seen: string[] = [];
    await eventually('the drain to be delivered', async () => {
      const status = await groupStatus(fx.client, ref);
      const member = status.members.find((m) => m.instanceId === oldest.instanceId);
      seen.push(JSON.stringify({ member, lastError: status.lastError, running: status.running, pending: status.pending }));
      return !member || member.leaving ? true : undefined;
    }, 30_000, 250).catch((err) => {
      throw new Error(`${(err as Error).message}; last seen ${seen.slice(-2).join(' ')}`);
    });
    expect(heldCalls).toBe(1);
    expect(launchWent).toBe(false);
  } finally {
    release();
  }
  await waitForConvergence(fx.client, ref, { timeoutMs: 180_000, size: 3, pollMs: 500 });
  await eventually('the drained member gone', async () => ((await groupStatus(fx.client, ref)).members.some((m) => m.instanceId === oldest.instanceId) ? undefined : true), 180_000, 1000);
  await fx.expectEmulatorMatchesGroups();
});
