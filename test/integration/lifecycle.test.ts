import { DeregisterTargetsCommand } from '@aws-sdk/client-elastic-load-balancing-v2';
import { StopInstancesCommand } from '@aws-sdk/client-ec2';
import { targetsOf } from '../../adapters/elbv2/targets';
import { groupStatus } from '../../client/ops/status';
import type { AuditEntry, GroupStatus } from '../../common/types';
import { runCli } from '../support/cli';
import { expectLinkToRunOf } from '../support/ui-link';
import { groupWorkflowId } from '../../common/names';
import { ALIVE_STATES, eventually, listKeys, readJson, shardInstances } from '../support/emulator';
import { recordHistory } from '../support/record-histories';
import { useShard } from '../support/shard-fixture';
import { instanceHealthSignal, instanceStatusQuery } from '../../workflows/definitions';

const fx = useShard('life', {
  worker: true,
  registrar: true,
  config: {
    size: 2,
    reconcileInterval: '2s',
    // registration_timeout must exceed the GC interval (Nstance's rule); every instance here is owned, so GC finds nothing.
    shardSettings: { garbage_collection: { interval: '5s', registration_timeout: '8s' } },
    web: { load_balancers: ['web'], drain_timeout: '20s' },
  },
});
const { shard, ref } = fx;
const tg = () => ({ arn: fx.seed.targetGroupArn, port: 443 });

/** The group serves `size` instances in service, and the emulator runs exactly those, registered in the NLB. */
async function inService(size: number): Promise<GroupStatus> {
  const status = await eventually(`${size} in service`, async () => {
    const s = await groupStatus(fx.client, ref);
    const serving = s.members.filter((m) => m.phase === 'in-service');
    return serving.length === size && s.members.length === size ? s : undefined;
  }, 90_000);
  const ids = status.members.map((m) => m.ec2InstanceId).sort();
  await eventually('emulator holds exactly the group', async () => {
    const running = (await shardInstances(fx.aws.ec2, shard, ALIVE_STATES)).map((i) => i.InstanceId).sort();
    return JSON.stringify(running) === JSON.stringify(ids) ? true : undefined;
  });
  await eventually('targets registered', async () => {
    const targets = [...(await targetsOf(fx.aws.elbv2, tg())).keys()].sort();
    return JSON.stringify(targets) === JSON.stringify(ids) ? true : undefined;
  });
  return status;
}

async function terminatedInEmulator(ec2InstanceId: string): Promise<void> {
  await eventually(`${ec2InstanceId} terminated`, async () => {
    const gone = await shardInstances(fx.aws.ec2, shard, ['shutting-down', 'terminated']);
    return gone.some((i) => i.InstanceId === ec2InstanceId) ? true : undefined;
  });
}

/** Position of the first matching AWS call at or after `from` in the fault layer's log (-1 if none). */
function callIndex(command: string, id: string, from = 0): number {
  return fx.faults.calls.findIndex((c, i) => i >= from && c.command === command && JSON.stringify(c.input).includes(id));
}

test('registered instances go in service and into the target group', async () => {
  await inService(2);
});

test('a target removed by hand is re-registered on the next reconcile', async () => {
  const victim = (await groupStatus(fx.client, ref)).members[0].ec2InstanceId as string;
  await fx.aws.elbv2.send(new DeregisterTargetsCommand({ TargetGroupArn: fx.seed.targetGroupArn, Targets: [{ Id: victim, Port: 443 }] }));
  expect((await targetsOf(fx.aws.elbv2, tg())).has(victim)).toBe(false);
  await eventually('target re-registered', async () => ((await targetsOf(fx.aws.elbv2, tg())).has(victim) ? true : undefined));
});

test('missed health: replaced create-before-destroy, drained (deregistered before terminated)', async () => {
  const before = await inService(2);
  const mark = fx.faults.calls.length;
  const sick = before.members[0];
  await fx.registrar.health(sick.instanceId, 'unhealthy', 'missed 3 health intervals');
  await terminatedInEmulator(sick.ec2InstanceId as string);
  const after = await inService(2);
  expect(after.members.map((m) => m.instanceId)).not.toContain(sick.instanceId);
  const deregistered = callIndex('DeregisterTargets', sick.ec2InstanceId as string, mark);
  const terminated = callIndex('TerminateInstances', sick.ec2InstanceId as string, mark);
  expect(deregistered).toBeGreaterThanOrEqual(0);
  expect(terminated).toBeGreaterThan(deregistered);
  // Create-before-destroy: the replacement was launched before the sick one was drained.
  const replacement = after.members.find((m) => !before.members.some((b) => b.instanceId === m.instanceId));
  expect(callIndex('RunInstances', replacement!.instanceId, mark)).toBeGreaterThanOrEqual(mark);
  expect(callIndex('RunInstances', replacement!.instanceId, mark)).toBeLessThan(deregistered);
});

test('an instance stopped behind our back is replaced at once', async () => {
  const before = await inService(2);
  const victim = before.members[1].ec2InstanceId as string;
  await fx.aws.ec2.send(new StopInstancesCommand({ InstanceIds: [victim] }));
  await terminatedInEmulator(victim);
  const after = await inService(2);
  expect(after.members.map((m) => m.ec2InstanceId)).not.toContain(victim);
});

test('an instance that never registers is terminated and replaced', async () => {
  await inService(2);
  fx.registrar.silent.add('*');
  const silentIds = new Set<string>();
  const stopSilencing = setInterval(() => {
    void groupStatus(fx.client, ref).then((s) => {
      for (const m of s.members) if (m.phase === 'provisioning' || m.phase === 'running') silentIds.add(m.instanceId);
      for (const id of silentIds) fx.registrar.silent.add(id);
      fx.registrar.silent.delete('*');
    });
  }, 200);
  await fx.scale(3);
  const silent = await eventually('the new instance launched', async () => {
    const s = await groupStatus(fx.client, ref);
    return s.members.find((m) => silentIds.has(m.instanceId) && m.ec2InstanceId);
  });
  clearInterval(stopSilencing);
  await terminatedInEmulator(silent.ec2InstanceId as string);
  const after = await inService(3);
  expect(after.members.map((m) => m.instanceId)).not.toContain(silent.instanceId);
  await eventually('the registration timeout audited', async () => {
    const audit = await Promise.all((await listKeys(fx.aws.s3, fx.bucket, `shard/${shard}/audit/`)).map((k) => readJson<AuditEntry>(fx.aws.s3, fx.bucket, k)));
    return audit.some((e) => e.action === 'instance.registration-timeout' && e.instanceIds?.includes(silent.instanceId)) ? true : undefined;
  });
});

test('`nstance instance replace` and `instance drain` keep the group at size', async () => {
  const before = await inService(3);
  const mark = fx.faults.calls.length;
  const replaced = await runCli('instance', 'replace', before.members[0].instanceId, '--shard', shard);
  expect(replaced.code).toBe(0);
  // Each prints the Web UI link of the group run it signalled.
  await expectLinkToRunOf(fx.client, replaced.stdout, groupWorkflowId(shard, 'default', 'web'));
  await terminatedInEmulator(before.members[0].ec2InstanceId as string);
  const drained = await runCli('instance', 'drain', before.members[1].ec2InstanceId as string, '--shard', shard);
  expect(drained.code).toBe(0);
  await expectLinkToRunOf(fx.client, drained.stdout, groupWorkflowId(shard, 'default', 'web'));
  await terminatedInEmulator(before.members[1].ec2InstanceId as string);
  const after = await inService(3);
  expect(after.members.map((m) => m.instanceId)).not.toContain(before.members[0].instanceId);
  expect(after.members.map((m) => m.instanceId)).not.toContain(before.members[1].instanceId);
  const drainedId = before.members[1].ec2InstanceId as string;
  expect(callIndex('DeregisterTargets', drainedId, mark)).toBeGreaterThanOrEqual(mark);
  expect(callIndex('DeregisterTargets', drainedId, mark)).toBeLessThan(callIndex('TerminateInstances', drainedId, mark));
});

test('a drain waits while the NLB still reports the target draining, up to drain_timeout, then terminates', async () => {
  const before = await inService(3);
  const victim = before.members[0];
  const ec2Id = victim.ec2InstanceId as string;
  const mark = fx.faults.calls.length;
  fx.faults.keepDraining(ec2Id);
  try {
    const drained = await runCli('instance', 'drain', victim.instanceId, '--shard', shard);
    expect(drained.code).toBe(0);
    await eventually('shown as draining', async () => {
      const rows = JSON.parse((await runCli('instances', '--json', '--shard', shard)).stdout) as { id: string; phase: string }[];
      return rows.some((r) => r.id === victim.instanceId && r.phase === 'draining') ? true : undefined;
    });
    await terminatedInEmulator(ec2Id);
  } finally {
    fx.faults.stopDraining(ec2Id);
  }
  const deregisteredAt = fx.faults.calls[callIndex('DeregisterTargets', ec2Id, mark)].at;
  const terminatedAt = fx.faults.calls[callIndex('TerminateInstances', ec2Id, mark)].at;
  // This file's config sets drain_timeout 20s; the NLB never stopped reporting the target.
  expect(terminatedAt - deregisteredAt).toBeGreaterThanOrEqual(19_000);
  // EC2 shows it terminated a moment before the workflow writes its audit entry.
  const entry = await eventually('the terminate audited', async () => {
    const audit = await Promise.all((await listKeys(fx.aws.s3, fx.bucket, `shard/${shard}/audit/`)).map((k) => readJson<AuditEntry>(fx.aws.s3, fx.bucket, k)));
    return audit.find((e) => e.action === 'instance.terminate' && e.instanceIds?.includes(victim.instanceId));
  });
  expect(entry.details).toMatchObject({ reason: 'drain-requested', drained: true });
  await inService(3);
});

/**
 * README, "History budget": one normal life (provision → in service → drain → terminated)
 * costs 44 events of work and one workflow task (3 events) per wake-up: 86–89 events.
 */
const INSTANCE_HISTORY_BUDGET = 90;
const INSTANCE_WORK_EVENTS_BUDGET = 44;
const WORKFLOW_TASK_EVENTS = new Set(['5', '6', '7', 'EVENT_TYPE_WORKFLOW_TASK_SCHEDULED', 'EVENT_TYPE_WORKFLOW_TASK_STARTED', 'EVENT_TYPE_WORKFLOW_TASK_COMPLETED']);

test('one normal instance life stays within its history budget', async () => {
  const before = await inService(3);
  await fx.scale(2);
  // Scale-down removes the oldest; wait for any one of the three to finish its life.
  const finished = await eventually('an instance workflow completed', async () => {
    for (const m of before.members) {
      const d = await fx.client.workflow.getHandle(`nstance:${shard}:instance:${m.instanceId}`).describe();
      if (d.status.name === 'COMPLETED') return m;
    }
    return undefined;
  });
  const history = await fx.client.workflow.getHandle(`nstance:${shard}:instance:${finished.instanceId}`).fetchHistory();
  recordHistory(`nstance:${shard}:instance:${finished.instanceId}`, 'instance-normal-life-encrypted');
  const events = history.events ?? [];
  const counts: Record<string, number> = {};
  for (const e of events) counts[String(e.eventType)] = (counts[String(e.eventType)] ?? 0) + 1;
  process.stdout.write(`instance ${finished.instanceId}: ${events.length} history events for one life ${JSON.stringify(counts)}\n`);
  expect(events.length).toBeGreaterThan(20);
  expect(events.length).toBeLessThanOrEqual(INSTANCE_HISTORY_BUDGET);
  // The work itself (activities, timers, signals, search attributes) does not depend on timing.
  expect(events.filter((e) => !WORKFLOW_TASK_EVENTS.has(String(e.eventType))).length).toBeLessThanOrEqual(INSTANCE_WORK_EVENTS_BUDGET);
  await inService(2);
});

test('the group continued as new along the way (history stays bounded) and kept its members', async () => {
  const runs: string[] = [];
  for await (const run of fx.client.workflow.list({ query: `WorkflowId = 'nstance:${shard}:group:default/web'` })) runs.push(run.status.name);
  // global-setup has the server suggest continue-as-new at 150 events.
  expect(runs.filter((s) => s === 'CONTINUED_AS_NEW').length).toBeGreaterThanOrEqual(1);
  expect(runs.filter((s) => s === 'RUNNING')).toHaveLength(1);
  const current = await fx.client.workflow.getHandle(`nstance:${shard}:group:default/web`).fetchHistory();
  recordHistory(`nstance:${shard}:group:default/web`, 'group-lifecycle-encrypted');
  expect((current.events ?? []).length).toBeLessThan(400);
  await inService(2);
});

test('an instance in service whose history keeps growing continues as new, stays in service, and still leaves cleanly', async () => {
  const before = await inService(2);
  const oldest = [...before.members].sort((a, b) => a.seq - b.seq)[0];
  const workflowId = `nstance:${shard}:instance:${oldest.instanceId}`;
  const handle = fx.client.workflow.getHandle(workflowId);
  const firstRun = (await handle.describe()).runId;
  // Reports that change nothing still cost events (here: the same status, from ever newer leaders).
  // global-setup has the server suggest continue-as-new at 150 events.
  let epoch = 0;
  await eventually('continued as new', async () => {
    for (let i = 0; i < 5; i++) {
      epoch++;
      await handle.signal(instanceHealthSignal, { instanceId: oldest.instanceId, status: 'healthy', reason: 'repeated report', at: new Date().toISOString(), leaderEpoch: epoch });
    }
    return (await handle.describe()).runId !== firstRun ? true : undefined;
  }, 60_000, 100);
  expect(epoch).toBeGreaterThan(3);
  const runs: string[] = [];
  for await (const run of fx.client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) runs.push(run.status.name);
  expect(runs).toContain('CONTINUED_AS_NEW');
  // The new run picked up where the last left off: in service, same EC2 instance, still in the group.
  const resumed = await handle.query(instanceStatusQuery);
  expect(resumed).toMatchObject({ phase: 'in-service', ec2InstanceId: oldest.ec2InstanceId, health: 'healthy' });
  const after = await inService(2);
  expect(after.members.map((m) => m.instanceId)).toContain(oldest.instanceId);
  // A deposed leader's report is still refused across the run boundary (the epoch was carried over).
  await handle.signal(instanceHealthSignal, { instanceId: oldest.instanceId, status: 'unhealthy', reason: 'stale', at: new Date().toISOString(), leaderEpoch: epoch - 3 });
  await new Promise((r) => setTimeout(r, 1000));
  expect((await handle.query(instanceStatusQuery)).health).toBe('healthy');

  // Scale-down takes the oldest: the resumed run drains and terminates it.
  const mark = fx.faults.calls.length;
  await fx.scale(1);
  await terminatedInEmulator(oldest.ec2InstanceId as string);
  expect(callIndex('DeregisterTargets', oldest.ec2InstanceId as string, mark)).toBeLessThan(callIndex('TerminateInstances', oldest.ec2InstanceId as string, mark));
  await eventually('the resumed run completed', async () => ((await handle.describe()).status.name === 'COMPLETED' ? true : undefined));
  recordHistory(workflowId, 'instance-resumed-life-encrypted');
  await inService(1);
});
