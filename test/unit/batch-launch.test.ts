/** The group's batched launch: retries with the same token, hands on what it cannot launch, resumes a retried attempt. */
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { BATCH_LAUNCH_CONCURRENCY, emptyProgress, launchAccount, launchBatch, leftInputs, type BatchLaunchContext, type BatchProgress } from '../../activities/batch-launch';
import type { Launcher } from '../../activities/launcher';
import type { InstanceBatch } from '../../adapters/temporal/instance-batch';
import type { InstanceWorkflowInput, LaunchSpec } from '../../common/types';
import type { LaunchAttempt } from '../../activities/deps';

const batch = (ids: string[], extra: Partial<InstanceBatch> = {}): InstanceBatch => ({
  common: {
    shard: 's1',
    tenant: 'default',
    group: 'web',
    clusterId: 'c1',
    groupWorkflowId: 'g',
    launch: { kind: 'web', instanceType: 'm7g.large', subnetPool: 'main', subnetIds: ['subnet-a', 'subnet-b'] } as unknown as LaunchSpec,
    imageIds: { default: 'ami-1' },
  },
  instanceIds: ids,
  paceMs: 0,
  ...extra,
});

interface Call {
  instanceId: string;
  subnetId: string;
  launch: LaunchAttempt;
  findExisting: boolean;
}

function fakeLauncher(fail: (c: Call, n: number) => Error | undefined = () => undefined): Launcher & { calls: Call[]; subnetsChosen: number } {
  const calls: Call[] = [];
  const fake = {
    calls,
    subnetsChosen: 0,
    async selectSubnet() {
      fake.subnetsChosen++;
      return fake.subnetsChosen % 2 ? 'subnet-a' : 'subnet-b';
    },
    async launch(input: InstanceWorkflowInput, _images: Record<string, string>, subnetId: string, launch: LaunchAttempt, findExisting: boolean) {
      const call = { instanceId: input.instanceId, subnetId, launch, findExisting };
      calls.push(call);
      const err = fail(call, calls.filter((c) => c.instanceId === input.instanceId).length);
      if (err) throw err;
      return { ec2InstanceId: `i-${input.instanceId}`, subnetId, imageId: 'ami-1', adopted: false, state: 'pending' };
    },
  };
  return fake;
}

async function run(b: InstanceBatch, launcher: Launcher, extra: Partial<BatchLaunchContext> = {}) {
  const started: InstanceWorkflowInput[] = [];
  const beats: BatchProgress[] = [];
  const progress: BatchProgress = await new MockActivityEnvironment().run(() =>
    launchBatch(b, {
      launcher,
      issuedAtMs: 1_000,
      retried: false,
      heartbeat: (p) => beats.push(JSON.parse(JSON.stringify(p)) as BatchProgress),
      start: async (input) => void started.push(input),
      signal: new AbortController().signal,
      ...extra,
    }),
  );
  return { progress, started, beats };
}

describe('batch launch', () => {
  test('plans every subnet and heartbeats the plan before the first launch, then starts each workflow with its instance', async () => {
    const launcher = fakeLauncher();
    const { progress, started, beats } = await run(batch(['a', 'b', 'c']), launcher);
    expect(Object.keys(beats[0]?.subnets ?? {}).sort()).toEqual(['a', 'b', 'c']);
    expect(Object.keys(beats[0]?.launched ?? {})).toEqual([]);
    expect(started.map((i) => [i.instanceId, i.launched?.ec2InstanceId])).toEqual(expect.arrayContaining([['a', 'i-a'], ['b', 'i-b'], ['c', 'i-c']]));
    expect(progress.left).toEqual({});
    expect(launcher.calls.every((c) => !c.findExisting && c.launch.issuedAtMs === 1_000)).toBe(true);
  });

  test('what it started is audited in one entry and reported to the group; those workflows are told so', async () => {
    const noCapacity = ApplicationFailure.create({ type: 'InsufficientCapacity', nonRetryable: true, message: 'no capacity' });
    const launcher = fakeLauncher((c) => (c.instanceId === 'c' ? noCapacity : undefined));
    const b = batch(['a', 'b', 'c'], { paceMs: 1 });
    const { progress, started } = await run(b, launcher);
    expect(started.map((i) => [i.instanceId, i.launchReported])).toEqual([['a', true], ['b', true]]);
    // What the batch left to its own workflow audits and reports itself.
    expect(leftInputs(b, progress).map((i) => [i.instanceId, i.launchReported])).toEqual([['c', undefined]]);
    const { audit, reports } = launchAccount(b, progress, '2026-12-02T00:00:00.000Z', 'g');
    expect(reports).toEqual({ a: { ec2InstanceId: 'i-a' }, b: { ec2InstanceId: 'i-b' } });
    expect(audit).toMatchObject({ action: 'instance.create', shard: 's1', tenant: 'default', group: 'web', workflowId: 'g', instanceIds: ['a', 'b'], ec2InstanceIds: ['i-a', 'i-b'] });
    expect(audit?.details).toEqual({ instances: { a: { ec2InstanceId: 'i-a', subnetId: expect.any(String), imageId: 'ami-1', adopted: false }, b: { ec2InstanceId: 'i-b', subnetId: expect.any(String), imageId: 'ami-1', adopted: false } } });
    // Nothing started, nothing to audit.
    expect(launchAccount(b, emptyProgress(), '2026-12-02T00:00:00.000Z', 'g')).toEqual({ reports: {} });
  });

  test('a launch whose outcome is unknown is retried with the same token inputs, looking for its instance first', async () => {
    const launcher = fakeLauncher((c, n) => (c.instanceId === 'b' && n < 3 ? new Error('InternalError: response lost') : undefined));
    const { progress, started } = await run(batch(['a', 'b']), launcher);
    const tries = launcher.calls.filter((c) => c.instanceId === 'b');
    expect(tries).toHaveLength(3);
    expect(new Set(tries.map((t) => `${t.subnetId}/${t.launch.workflowId}/${t.launch.issuedAtMs}`)).size).toBe(1);
    expect(tries.map((t) => t.findExisting)).toEqual([false, true, true]);
    expect(started.map((i) => i.instanceId).sort()).toEqual(['a', 'b']);
    expect(progress.left).toEqual({});
  }, 20_000);

  test('a refusal stops the batch: the rest is left to its own workflows, which look first only where something may exist', async () => {
    const noCapacity = ApplicationFailure.create({ type: 'InsufficientCapacity', nonRetryable: true, message: 'no capacity' });
    const launcher = fakeLauncher((c) => (c.instanceId === 'a' ? noCapacity : undefined));
    const b = batch(['a', 'b', 'c'], { paceMs: 1 });
    const { progress, started } = await run(b, launcher);
    expect(launcher.calls.map((c) => c.instanceId)).toEqual(['a']);
    expect(started).toEqual([]);
    expect(progress.left).toEqual({ a: { findExisting: false }, b: { findExisting: false }, c: { findExisting: false } });
    expect(leftInputs(b, progress).map((i) => [i.instanceId, i.findExisting, i.launched])).toEqual([
      ['a', undefined, undefined],
      ['b', undefined, undefined],
      ['c', undefined, undefined],
    ]);
  });

  test('a retried attempt keeps what was started and each subnet it planned, and looks for every other instance first', async () => {
    const resumed: BatchProgress = { ...emptyProgress(), subnets: { a: 'subnet-a', b: 'subnet-b' }, launched: { a: { ec2InstanceId: 'i-a', state: 'running', adopted: false } }, startedIds: ['a'] };
    const launcher = fakeLauncher();
    const { started } = await run(batch(['a', 'b', 'c']), launcher, { retried: true, resumed });
    expect(started.map((i) => i.instanceId).sort()).toEqual(['b', 'c']);
    expect(launcher.calls.find((c) => c.instanceId === 'b')).toMatchObject({ subnetId: 'subnet-b', findExisting: true });
    expect(launcher.calls.find((c) => c.instanceId === 'c')?.findExisting).toBe(true);
    expect(launcher.subnetsChosen).toBe(1);
  });

  test('a slow workflow start does not hold up the launches behind it', async () => {
    const ids = Array.from({ length: BATCH_LAUNCH_CONCURRENCY + 5 }, (_, i) => `m${i}`);
    const launcher = fakeLauncher();
    let launchedWhenFirstStartEnded: number | undefined;
    const { started, progress } = await run(batch(ids), launcher, {
      start: async () => {
        // Every lane would sit here, with launches still to make, if starts ran in the lanes.
        for (let waited = 0; launcher.calls.length < ids.length && waited < 2_000; waited += 10) await new Promise((r) => setTimeout(r, 10));
        launchedWhenFirstStartEnded ??= launcher.calls.length;
      },
    });
    expect(launchedWhenFirstStartEnded).toBe(ids.length);
    expect(progress.startedIds.sort()).toEqual([...ids].sort());
    expect(progress.left).toEqual({});
    expect(started).toEqual([]);
  });
});
