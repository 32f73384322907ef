import { RunInstancesCommand, TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import { MockActivityEnvironment } from '@temporalio/testing';
import { gcWorkflowId, instanceWorkflowId, TAG } from '../../common/names';
import { groupStatus } from '../../client/ops/status';
import type { AuditEntry } from '../../common/types';
import { createGcActivities, type Orphan } from '../../activities/gc-activities';
import { latestRunStatus } from '../../adapters/temporal/workflow-status';
import { awsError, type CallRecord } from '../support/faults';
import { eventually, listKeys, readJson, shardInstances, tagOf } from '../support/emulator';
import { useShard } from '../support/shard-fixture';
import { recordHistory } from '../support/record-histories';

/** garbage_collection.registration_timeout below: the GC's grace period. */
const GRACE_MS = 10_000;
const fx = useShard('gc', { worker: true, registrar: true, config: { size: 1, reconcileInterval: '1s', shardSettings: { garbage_collection: { interval: '1s', registration_timeout: '10s' } } } });
const { shard, ref } = fx;
const EVERY_STATE = ['pending', 'running', 'stopping', 'stopped', 'shutting-down', 'terminated'];

/** A tagged instance launched behind the shard's back, as a crashed or foreign launcher would leave it. */
async function launchTagged(instanceId: string, forShard = shard): Promise<{ ec2InstanceId: string; launchedAt: number; returnedAt: number }> {
  const out = await fx.aws.ec2.send(
    new RunInstancesCommand({
      ImageId: fx.seed.imageId,
      InstanceType: 'm7g.large',
      SubnetId: fx.seed.subnetIds[0],
      MinCount: 1,
      MaxCount: 1,
      // Tagged as the project's own launches are (instance and root volume): the IAM proof judges this call too.
      TagSpecifications: (['instance', 'volume'] as const).map((ResourceType) => ({
        ResourceType,
        Tags: [
          { Key: TAG.instanceId, Value: instanceId },
          { Key: TAG.clusterId, Value: 'test' },
          { Key: TAG.shard, Value: forShard },
          { Key: TAG.managed, Value: 'true' },
        ],
      })),
    }),
  );
  const instance = out.Instances![0];
  return { ec2InstanceId: instance.InstanceId!, launchedAt: instance.LaunchTime!.getTime(), returnedAt: Date.now() };
}

const filterValues = (input: Record<string, unknown>, name: string): string[] | undefined =>
  (input.Filters as { Name?: string; Values?: string[] }[] | undefined)?.find((f) => f.Name === name)?.Values;

/** The GC's listing of a shard (cluster, shard and managed tags), page by page, as the fault layer recorded it. */
const gcListings = (forShard = shard): CallRecord[] =>
  fx.faults
    .callsOf('DescribeInstances')
    .filter((c) => filterValues(c.input, `tag:${TAG.clusterId}`) && filterValues(c.input, `tag:${TAG.managed}`) && filterValues(c.input, `tag:${TAG.shard}`)?.includes(forShard));
/** When GC passes started: one first page (no NextToken) per pass. */
const gcPassStarts = (): number[] => gcListings().filter((c) => !c.input.NextToken).map((c) => c.at);
const terminateCalls = (ec2InstanceId: string): CallRecord[] =>
  fx.faults.callsOf('TerminateInstances').filter((c) => (c.input.InstanceIds as string[] | undefined)?.includes(ec2InstanceId));

async function audits(forShard = shard): Promise<AuditEntry[]> {
  return Promise.all((await listKeys(fx.aws.s3, fx.bucket, `shard/${forShard}/audit/`)).map((k) => readJson<AuditEntry>(fx.aws.s3, fx.bucket, k)));
}

test('an orphan (tagged, no workflow) is left alone for the grace period, then terminated and audited; owned instances are kept', async () => {
  const owned = await eventually('the group instance in service', async () => {
    const s = await groupStatus(fx.client, ref);
    return s.members.find((m) => m.phase === 'in-service');
  });
  const orphan = await launchTagged('web-orphan000001');
  await eventually('orphan terminated', async () => {
    const gone = await shardInstances(fx.aws.ec2, shard, ['shutting-down', 'terminated']);
    return gone.some((i) => i.InstanceId === orphan.ec2InstanceId) ? true : undefined;
  }, 60_000);
  // Not before the grace period: passes (every second) that saw it young let it be. Without the
  // grace check the first pass after its launch would have terminated it.
  const [terminated] = terminateCalls(orphan.ec2InstanceId);
  expect(terminated.at - orphan.launchedAt).toBeGreaterThanOrEqual(GRACE_MS);
  expect(gcPassStarts().some((at) => at > orphan.returnedAt && at < orphan.launchedAt + GRACE_MS - 2000)).toBe(true);
  // The audit entry is written after the terminate call, so EC2 may show the orphan gone first.
  const gc = await eventually('the termination audited', async () => {
    const entries = (await audits()).filter((e) => e.action === 'gc.terminate');
    return entries.length > 0 ? entries : undefined;
  }, 15_000);
  expect(gc).toHaveLength(1);
  expect(gc[0].ec2InstanceIds).toEqual([orphan.ec2InstanceId]);
  // What the group owns is untouched: the emulator runs exactly the group's members.
  const members = (await groupStatus(fx.client, ref)).members.map((m) => m.ec2InstanceId);
  expect(members).toContain(owned.ec2InstanceId);
  expect((await shardInstances(fx.aws.ec2, shard)).map((i) => i.InstanceId).sort()).toEqual(members.sort());
  // A replay fixture (encrypted payloads): GC passes that left an orphan alone, then collected it.
  recordHistory(gcWorkflowId(shard), 'gc-orphan-collected');
});

test('a launch that crashed after RunInstances, hidden from Describe past the grace period, is neither collected nor duplicated', async () => {
  // RunInstances succeeds but the activity "crashes" before the workflow records the instance; EC2
  // then hides it from every Describe for longer than the GC's grace period. The retry's tag look-up
  // misses it, so only the ClientToken stops a second launch; and when the GC first sees it, it is
  // already past the grace, so only ownership (its workflow runs) keeps it alive.
  const HIDE_MS = GRACE_MS + 2000;
  const before = new Set((await shardInstances(fx.aws.ec2, shard, EVERY_STATE)).map((i) => i.InstanceId));
  fx.faults
    .emulateClientTokens()
    .hideNewInstances(HIDE_MS)
    .failAfter('RunInstances', () => awsError('InternalError', 'injected: worker crashed after RunInstances', 'server'));
  try {
    await fx.scale(2);
    const both = await eventually('2 in service', async () => {
      const s = await groupStatus(fx.client, ref);
      return s.members.filter((m) => m.phase === 'in-service').length === 2 ? s : undefined;
    }, 90_000);
    const added = both.members.find((m) => !before.has(m.ec2InstanceId));
    const { instanceId, ec2InstanceId, launchedAt } = added ?? {};
    if (!ec2InstanceId || !launchedAt) throw new Error(`no new member with a launched instance: ${JSON.stringify(both.members)}`);

    // Two GC passes began after it was visible again (hidden from a moment after LaunchTime: 1 s of slack)
    // and older than the grace: the first of them has decided on it.
    const decidedFrom = Date.parse(launchedAt) + HIDE_MS + 1000;
    await eventually('two GC passes over it past its grace', async () => (gcPassStarts().filter((at) => at > decidedFrom).length >= 2 ? true : undefined), 30_000, 200);

    // The crash was real and the retry reused its token: one instance for this member, ever.
    const runs = fx.faults.callsOf('RunInstances');
    const crashed = runs.filter((c) => c.outcome === 'injected');
    expect(crashed).toHaveLength(1);
    expect(runs.filter((c) => c.input.ClientToken === crashed[0].input.ClientToken).length).toBeGreaterThanOrEqual(2);
    const everTagged = (await shardInstances(fx.aws.ec2, shard, EVERY_STATE)).filter((i) => tagOf(i, TAG.instanceId) === instanceId);
    expect(everTagged.map((i) => i.InstanceId)).toEqual([ec2InstanceId]);

    // Not collected: still running, no terminate, no GC audit; the emulator runs exactly the group.
    expect(terminateCalls(ec2InstanceId)).toEqual([]);
    expect((await audits()).filter((e) => e.action === 'gc.terminate').flatMap((e) => e.ec2InstanceIds)).not.toContain(ec2InstanceId);
    const alive = await shardInstances(fx.aws.ec2, shard, ['pending', 'running']);
    expect(alive.map((i) => i.InstanceId).sort()).toEqual(both.members.map((m) => m.ec2InstanceId).sort());
  } finally {
    fx.faults.hideNewInstances(0);
    fx.faults.clear();
  }
});

test("a running member that Describe stops showing is neither marked lost nor terminated while it is within the group's missing grace", async () => {
  const member = await eventually('a member in service', async () => (await groupStatus(fx.client, ref)).members.find((m) => m.phase === 'in-service' && !m.leaving));
  const ec2InstanceId = member.ec2InstanceId as string;
  // The group's observe pass asks for its members by an instance-id filter.
  const observed = (since: number) =>
    fx.faults.callsOf('DescribeInstances').filter((c) => c.at >= since && filterValues(c.input, 'instance-id')?.includes(ec2InstanceId)).length;
  const hiddenAt = Date.now();
  fx.faults.setInstanceHidden(ec2InstanceId, true);
  try {
    // Two observe passes answered without it: the second starts only after the group acted on the first,
    // so the status read after it shows what the group made of the absence (or stop early if it acted).
    const { seen } = await eventually('two observe passes that did not see it', async () => {
      const passes = observed(hiddenAt);
      const m = (await groupStatus(fx.client, ref)).members.find((x) => x.instanceId === member.instanceId);
      return passes >= 2 || !m || m.lost || m.leaving ? { seen: m } : undefined;
    }, 30_000, 200);
    expect(seen).toMatchObject({ phase: 'in-service', ec2InstanceId });
    expect(seen?.lost).toBeFalsy();
    expect(seen?.leaving).toBeFalsy();
  } finally {
    fx.faults.setInstanceHidden(ec2InstanceId, false);
  }
  expect(terminateCalls(ec2InstanceId)).toEqual([]);
  expect(await latestRunStatus(fx.client, instanceWorkflowId(shard, member.instanceId))).toBe('RUNNING');
  await fx.expectEmulatorMatchesGroups();
});

test('collectGarbage lists every page: an orphan on the second page is collected once past the grace; owned instances on the first are kept', async () => {
  // Another shard tag, so the file's own GC workflow never touches these. Their owners are workflows on
  // a task queue nobody polls: running (as describe reports it) without doing anything.
  const other = `${shard}-pages`;
  fx.alsoProveShard(other);
  const owners = [1, 2, 3, 4, 5].map((n) => `web-owned0000${n}`);
  const handles = await Promise.all(
    owners.map((id) => fx.client.workflow.start('instanceWorkflow', { workflowId: instanceWorkflowId(other, id), taskQueue: `unpolled-${other}`, args: [] })),
  );
  const launched: string[] = [];
  try {
    // One reservation each, oldest first: with 5 per page the orphan, launched last, is on page 2.
    for (const id of owners) launched.push((await launchTagged(id, other)).ec2InstanceId);
    const orphan = (await launchTagged('web-orphan000002', other)).ec2InstanceId;
    launched.push(orphan);
    const gc = createGcActivities({ aws: fx.aws, bucket: fx.bucket, temporal: fx.client, gcDescribePageSize: 5 });
    const env = new MockActivityEnvironment();
    const request = (graceMs: number) => ({ shard: other, clusterId: 'test', graceMs, at: new Date().toISOString() });

    // Younger than the grace period: kept, though nothing owns it.
    expect(await env.run(gc.collectGarbage, request(3_600_000))).toEqual([]);
    // Past it: the orphan goes; the owned ones stay, however old.
    const collected = (await env.run(gc.collectGarbage, request(0))) as Orphan[];
    expect(collected.map((o) => [o.ec2InstanceId, o.instanceId])).toEqual([[orphan, 'web-orphan000002']]);

    const states = new Map((await shardInstances(fx.aws.ec2, other, EVERY_STATE)).map((i) => [i.InstanceId, i.State?.Name]));
    expect(['shutting-down', 'terminated']).toContain(states.get(orphan));
    for (const id of launched.slice(0, owners.length)) expect(states.get(id)).toBe('running');
    // Each pass read two pages of 5, the second by the first's token.
    expect(gcListings(other).map((c) => [c.input.MaxResults, c.input.NextToken !== undefined])).toEqual([
      [5, false],
      [5, true],
      [5, false],
      [5, true],
    ]);
    expect((await audits(other)).filter((e) => e.action === 'gc.terminate').map((e) => e.ec2InstanceIds)).toEqual([[orphan]]);
  } finally {
    await Promise.all(handles.map((h) => h.terminate('test over').catch(() => undefined)));
    if (launched.length > 0) await fx.aws.ec2.send(new TerminateInstancesCommand({ InstanceIds: launched }));
  }
});

test("a duplicate (another instance carrying a live member's tag) is collected after the grace; the member's own instance is kept", async () => {
  const member = await eventually('a member in service', async () => (await groupStatus(fx.client, ref)).members.find((m) => m.phase === 'in-service' && m.ec2InstanceId));
  const duplicate = await launchTagged(member.instanceId);
  await eventually('duplicate terminated', async () => {
    const gone = await shardInstances(fx.aws.ec2, shard, ['shutting-down', 'terminated']);
    return gone.some((i) => i.InstanceId === duplicate.ec2InstanceId) ? true : undefined;
  }, 60_000);
  expect(terminateCalls(duplicate.ec2InstanceId)[0].at - duplicate.launchedAt).toBeGreaterThanOrEqual(GRACE_MS);
  const entry = await eventually('audited', async () => (await audits()).find((e) => e.action === 'gc.terminate' && e.ec2InstanceIds?.includes(duplicate.ec2InstanceId)));
  expect(entry.details?.why).toBe(`a duplicate: ${member.instanceId}'s workflow runs ${member.ec2InstanceId}`);
  // Its kind, by which the metrics count it (nstance_gc_actions_total{action="duplicate-terminated"}).
  expect(entry.details?.kind).toBe('duplicate');
  // The member itself: untouched, still in service, its instance still running.
  expect(terminateCalls(member.ec2InstanceId as string)).toEqual([]);
  expect((await groupStatus(fx.client, ref)).members.find((m) => m.instanceId === member.instanceId)?.phase).toBe('in-service');
  expect((await shardInstances(fx.aws.ec2, shard)).map((i) => i.InstanceId)).toContain(member.ec2InstanceId);
});
