import { CreateTagsCommand, RunInstancesCommand, TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createGcActivities, type GcProgress, type GcRequest, type Orphan } from '../../activities/gc-activities';
import { defaultEc2RateLimits, TokenBucket } from '../../adapters/aws/token-bucket';
import { TERMINATE_BATCH_SIZE } from '../../adapters/ec2/terminate-batch';
import { instanceWorkflowId, TAG } from '../../common/names';
import { runningInShard, searchAttributeUpdates } from '../../common/search-attributes';
import type { AuditEntry } from '../../common/types';
import { eventually, listKeys, readJson, shardInstances } from '../support/emulator';
import { awsError, type CallRecord } from '../support/faults';
import { useShard } from '../support/shard-fixture';
import { TemporalCallLayer } from '../support/temporal-calls';

/**
 * The collector at scale: owners come from one visibility listing, only suspects are described,
 * orphans are terminated in batches, and a retried attempt goes on from its heartbeat. No worker
 * runs here: collectGarbage is run directly, against the real dev server and moto, over owners that
 * are instance workflows on a task queue nobody polls (running, as describe and visibility show,
 * without doing anything).
 */
const fx = useShard('gcs');
const { shard } = fx;
const EVERY_STATE = ['pending', 'running', 'stopping', 'stopped', 'shutting-down', 'terminated'];
const launched: string[] = [];

afterAll(async () => {
  for (let i = 0; i < launched.length; i += 500) {
    await fx.aws.ec2.send(new TerminateInstancesCommand({ InstanceIds: launched.slice(i, i + 500) })).catch(() => undefined);
  }
});

/**
 * `ids.length` instances in one reservation, tagged as ours (nstanceTags): the common tags at launch,
 * then each its own instance id (undefined: none, as a foreign launcher might leave one).
 */
async function launchTagged(ids: (string | undefined)[]): Promise<string[]> {
  const out = await fx.aws.ec2.send(
    new RunInstancesCommand({
      ImageId: fx.seed.imageId,
      InstanceType: 'm7g.large',
      SubnetId: fx.seed.subnetIds[0],
      MinCount: ids.length,
      MaxCount: ids.length,
      TagSpecifications: [
        {
          ResourceType: 'instance',
          Tags: [
            { Key: TAG.clusterId, Value: 'test' },
            { Key: TAG.shard, Value: shard },
            { Key: TAG.group, Value: 'default/web' },
            { Key: TAG.tenant, Value: 'default' },
            { Key: TAG.managed, Value: 'true' },
          ],
        },
      ],
    }),
  );
  const ec2Ids = (out.Instances ?? []).map((i) => i.InstanceId as string);
  launched.push(...ec2Ids);
  await Promise.all(
    ec2Ids.map((ec2InstanceId, n) => {
      const instanceId = ids[n];
      if (!instanceId) return undefined;
      return fx.aws.ec2.send(new CreateTagsCommand({ Resources: [ec2InstanceId], Tags: [{ Key: TAG.instanceId, Value: instanceId }, { Key: 'Name', Value: instanceId }] }));
    }),
  );
  return ec2Ids;
}

/** An instance workflow owning `instanceId`, with the search attributes ours carry (NstanceInstanceId once it has recorded its instance). */
async function startOwner(instanceId: string, ec2InstanceId?: string) {
  return fx.client.workflow.start('instanceWorkflow', {
    workflowId: instanceWorkflowId(shard, instanceId),
    taskQueue: `unpolled-${shard}`,
    args: [],
    typedSearchAttributes: searchAttributeUpdates({ NstanceShard: shard, NstanceGroup: 'default/web', NstanceInstanceId: ec2InstanceId }),
  });
}

/** Waits until visibility lists exactly these running instance workflows of the shard. */
async function visibilityShows(instanceIds: readonly string[]): Promise<void> {
  const expected = instanceIds.map((id) => instanceWorkflowId(shard, id)).sort();
  await eventually('visibility to list the owners', async () => {
    const listed: string[] = [];
    for await (const e of fx.client.workflow.list({ query: runningInShard('instanceWorkflow', shard) })) listed.push(e.workflowId);
    return JSON.stringify(listed.sort()) === JSON.stringify(expected) ? true : undefined;
  });
}

const request = (graceMs: number, at = new Date().toISOString()): GcRequest => ({ shard, clusterId: 'test', graceMs, at });
const gcAudits = async (): Promise<AuditEntry[]> =>
  (await Promise.all((await listKeys(fx.aws.s3, fx.bucket, `shard/${shard}/audit/`)).map((k) => readJson<AuditEntry>(fx.aws.s3, fx.bucket, k)))).filter((e) => e.action === 'gc.terminate');
const terminatedBy = (calls: CallRecord[]): string[] => calls.filter((c) => c.outcome === 'ok').flatMap((c) => c.input.InstanceIds as string[]);
const since = (command: string, from: number): CallRecord[] => fx.faults.calls.slice(from).filter((c) => c.command === command);

/** A terminate bucket that counts the tokens taken from it. */
function countingTerminateBucket(): { bucket: TokenBucket; taken: () => number } {
  const bucket = new TokenBucket({ capacity: 1000, refillPerSecond: 20 });
  const take = bucket.take.bind(bucket);
  let taken = 0;
  bucket.take = (count = 1) => ((taken += count), take(count));
  return { bucket, taken: () => taken };
}

test('a pass over many owned instances describes only the suspects, collects the orphans and duplicates, and never an owned instance', async () => {
  const OWNED = 60;
  const owned = Array.from({ length: OWNED }, (_, n) => `web-own${String(n).padStart(5, '0')}`);
  // Three reservations of owned instances, so the listing spans pages (moto pages by reservation).
  const ownedEc2: string[] = [];
  for (let i = 0; i < OWNED; i += 20) ownedEc2.push(...(await launchTagged(owned.slice(i, i + 20))));
  const unrecorded = new Set(owned.slice(-5)); // their workflows have not recorded an EC2 id yet
  const owners = await Promise.all(owned.map((id, n) => startOwner(id, unrecorded.has(id) ? undefined : ownedEc2[n])));

  // Orphans: launches nothing owns (no workflow ever), and instances whose workflow has ended.
  const [noWorkflow, ended] = [['web-orphan00001', 'web-orphan00002', 'web-orphan00003'], ['web-ended00001', 'web-ended00002']];
  const noWorkflowEc2 = await launchTagged(noWorkflow);
  const endedEc2 = await launchTagged(ended);
  for (const id of ended) await (await startOwner(id)).terminate('ended');
  // Duplicates: a second instance under an owner's tag. One of an owner that has recorded its
  // instance (a duplicate), one of an owner that has not (may be the one it launches: kept).
  const [duplicateEc2, keptTwinEc2] = await launchTagged([owned[0], owned[OWNED - 1]]);
  const [untaggedEc2] = await launchTagged([undefined]);
  // Visibility lags: two owners are not listed yet. Only describe, which is consistent, may clear them.
  const lagging = new Set([owned[10], owned[20]].map((id) => instanceWorkflowId(shard, id as string)));
  await visibilityShows(owned);

  const temporal = new TemporalCallLayer(fx.client).hideFromVisibility((workflowId) => lagging.has(workflowId));
  const terminate = countingTerminateBucket();
  const gc = createGcActivities({ aws: fx.aws, bucket: fx.bucket, temporal: temporal.client, gcDescribePageSize: 5, ec2Limits: { ...defaultEc2RateLimits(), terminate: terminate.bucket } });
  const heartbeats: GcProgress[] = [];
  const run = async (graceMs: number): Promise<Orphan[]> => {
    const env = new MockActivityEnvironment();
    env.on('heartbeat', (d: GcProgress) => heartbeats.push(d));
    return (await env.run(gc.collectGarbage, request(graceMs))) as Orphan[];
  };

  // Everything younger than the grace: no suspect, no describe, nothing terminated.
  const callsBefore = fx.faults.calls.length;
  expect(await run(3_600_000)).toEqual([]);
  expect(temporal.count('describeWorkflowExecution')).toBe(0);
  expect(since('TerminateInstances', callsBefore)).toEqual([]);

  // Past the grace: 3 + 2 orphans, 1 duplicate and 2 lagging owners are suspects (8 describes, 1
  // per suspect); the untagged one needs none. Listing owners is one visibility page.
  temporal.reset();
  temporal.hideFromVisibility((workflowId) => lagging.has(workflowId));
  heartbeats.length = 0;
  const from = fx.faults.calls.length;
  const collected = await run(0);
  // Never an owned instance, the lagging owners' included.
  const states = new Map((await shardInstances(fx.aws.ec2, shard, EVERY_STATE)).map((i) => [i.InstanceId, i.State?.Name]));
  for (const id of [...ownedEc2, keptTwinEc2]) expect([id, states.get(id)]).toEqual([id, 'running']);
  expect(temporal.count('describeWorkflowExecution')).toBe(8);
  expect(temporal.count('listWorkflowExecutions')).toBe(1);
  const why = new Map(collected.map((o) => [o.ec2InstanceId, o.why]));
  expect(new Map([...why].sort())).toEqual(
    new Map(
      [
        ...noWorkflow.map((id, n) => [noWorkflowEc2[n], `no running workflow owns ${id}`] as const),
        ...ended.map((id, n) => [endedEc2[n], `no running workflow owns ${id}`] as const),
        [duplicateEc2, `a duplicate: ${owned[0]}'s workflow runs ${ownedEc2[0]}`] as const,
        [untaggedEc2, `no ${TAG.instanceId} tag`] as const,
      ].sort(),
    ),
  );

  // One TerminateInstances for the 7, one terminate token per instance; every owned instance runs.
  const terminateCalls = since('TerminateInstances', from);
  expect(terminateCalls).toHaveLength(1);
  expect([...terminatedBy(terminateCalls)].sort()).toEqual([...why.keys()].sort());
  expect(terminate.taken()).toBe(7);
  for (const id of why.keys()) expect(['shutting-down', 'terminated']).toContain(states.get(id));
  // Every EC2 page read: 7 reservations at 5 a page.
  const listings = since('DescribeInstances', from).filter((c) => c.input.MaxResults === 5);
  expect(listings.map((c) => c.input.NextToken !== undefined)).toEqual([false, true]);

  // One audit object per terminated instance.
  const audits = await gcAudits();
  expect(audits.flatMap((a) => a.ec2InstanceIds).sort()).toEqual([...why.keys()].sort());

  // It heartbeat through every phase, with its progress in the details.
  expect([...new Set(heartbeats.map((h) => h.phase))]).toEqual(['listing', 'confirming', 'terminating', 'done']);
  // One heartbeat per page of either listing (they run at once, so in either order).
  const listing = heartbeats.filter((h) => h.phase === 'listing').map((h) => h.counts.ec2Pages + h.counts.ownerPages);
  expect(listing).toEqual([1, 2, 3]);
  expect(heartbeats.filter((h) => h.phase === 'listing').at(-1)?.counts).toMatchObject({ ec2Pages: 2, ownerPages: 1 });
  expect(heartbeats.at(-1)?.counts).toMatchObject({ tagged: OWNED + 8, owners: OWNED - 2, owned: OWNED - 2 + 1, suspects: 9, described: 8, orphans: 7, terminated: 7, terminateCalls: 1 });

  // Once visibility has caught up, a pass over the same shard describes nothing at all.
  temporal.reset();
  expect(await run(0)).toEqual([]);
  expect(temporal.count('describeWorkflowExecution')).toBe(0);
  // The owners keep running (the fixture ends them): later tests see their instances owned.
  expect(owners).toHaveLength(OWNED);
});

test('a retried attempt goes on from its heartbeat: it lists and describes nothing again and re-terminates no finished batch', async () => {
  // More orphans than one TerminateInstances batch: the second batch fails the first attempt.
  const count = TERMINATE_BATCH_SIZE + 5;
  const ids = Array.from({ length: count }, (_, n) => `web-crash${String(n).padStart(5, '0')}`);
  const orphans = await launchTagged(ids);
  const temporal = new TemporalCallLayer(fx.client);
  const gc = createGcActivities({ aws: fx.aws, bucket: fx.bucket, temporal: temporal.client });
  const at = new Date().toISOString();
  const from = fx.faults.calls.length;

  let terminateCallsSeen = 0;
  fx.faults.failBefore((command) => command === 'TerminateInstances' && ++terminateCallsSeen === 2, () => awsError('RequestLimitExceeded', 'injected: throttled'));
  let last: unknown;
  const first = new MockActivityEnvironment({ attempt: 1 });
  first.on('heartbeat', (d: unknown) => (last = d));
  try {
    await expect(first.run(gc.collectGarbage, request(0, at))).rejects.toThrow(/RequestLimitExceeded/);
  } finally {
    fx.faults.clear();
  }
  expect(last).toMatchObject({ phase: 'terminating', counts: { handled: TERMINATE_BATCH_SIZE, orphans: count } });
  const describedFirst = temporal.count('describeWorkflowExecution');
  expect(describedFirst).toBe(count);

  const retryFrom = fx.faults.calls.length;
  temporal.reset();
  const retry = new MockActivityEnvironment({ attempt: 2, heartbeatDetails: last });
  const collected = (await retry.run(gc.collectGarbage, request(0, at))) as Orphan[];
  // The retry: no listing (EC2 or visibility), no describe, one batch for the 5 left.
  expect(since('DescribeInstances', retryFrom)).toEqual([]);
  expect(temporal.count('listWorkflowExecutions')).toBe(0);
  expect(temporal.count('describeWorkflowExecution')).toBe(0);
  const retried = since('TerminateInstances', retryFrom);
  expect(retried.map((c) => (c.input.InstanceIds as string[]).length)).toEqual([5]);
  // Across both attempts each orphan was terminated by exactly one successful call, and audited once.
  const all = terminatedBy(since('TerminateInstances', from));
  expect(all.length).toBe(count);
  expect([...all].sort()).toEqual([...orphans].sort());
  expect(collected.map((o) => o.ec2InstanceId).sort()).toEqual([...orphans].sort());
  const audited = (await gcAudits()).filter((a) => a.at === at).flatMap((a) => a.ec2InstanceIds);
  expect(audited.sort()).toEqual([...orphans].sort());
});

test('an id EC2 no longer knows fails the whole TerminateInstances call: the pass goes on one by one and collects every orphan', async () => {
  const ids = ['web-gone00001', 'web-gone00002', 'web-gone00003'];
  const orphans = await launchTagged(ids);
  const gc = createGcActivities({ aws: fx.aws, bucket: fx.bucket, temporal: fx.client });
  const at = new Date().toISOString();
  const from = fx.faults.calls.length;
  // As EC2 (and moto) answer a call naming one unknown id, whatever the others.
  fx.faults.failBefore(
    (command, input) => command === 'TerminateInstances' && (input.InstanceIds as string[]).length > 1,
    () => awsError('InvalidInstanceID.NotFound', `The instance ID '${orphans[1]}' does not exist`),
  );
  let collected: Orphan[];
  try {
    collected = (await new MockActivityEnvironment().run(gc.collectGarbage, request(0, at))) as Orphan[];
  } finally {
    fx.faults.clear();
  }
  const [batch, ...singles] = since('TerminateInstances', from);
  expect(batch?.outcome).toBe('injected');
  expect([...(batch?.input.InstanceIds as string[])].sort()).toEqual([...orphans].sort());
  expect(singles.map((c) => c.outcome)).toEqual(['ok', 'ok', 'ok']);
  expect(singles.map((c) => (c.input.InstanceIds as string[]).join()).sort()).toEqual([...orphans].sort());
  expect(collected.map((o) => o.ec2InstanceId).sort()).toEqual([...orphans].sort());
  const states = new Map((await shardInstances(fx.aws.ec2, shard, EVERY_STATE)).map((i) => [i.InstanceId, i.State?.Name]));
  for (const id of orphans) expect(['shutting-down', 'terminated']).toContain(states.get(id));
  expect((await gcAudits()).filter((a) => a.at === at).flatMap((a) => a.ec2InstanceIds).sort()).toEqual([...orphans].sort());
});
