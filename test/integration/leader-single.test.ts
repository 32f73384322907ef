/**
 * A shard with one worker process (the demo's setup): it must stay leader for
 * longer than the SDK Core's local activity timeout (heartbeat timeout + 5 s,
 * which cancels an activity that records no heartbeat through the SDK), and after
 * losing leadership (cut off from Temporal long enough to be timed out) it must
 * lead again once it can reach Temporal: a one-worker shard never stays leaderless.
 */
import { leaderWorkflowId, shardTaskQueue } from '../../common/names';
import type { leaderWorkflow } from '../../workflows/leader';
import { leaderResignSignal, leaderStatusQuery } from '../../workflows/definitions';
import { eventually } from '../support/emulator';
import { LeaderStack, type LeaderWorker } from '../support/leader-stack';
import { leaderStatusOf } from '../support/processes';

jest.setTimeout(150_000);

const shard = `lds-${Date.now().toString(36)}`;
let stack: LeaderStack;
let w1: LeaderWorker;

beforeAll(async () => {
  // Core's local timeout is then 2 s + 5 s: the watch below spans more than two of them.
  stack = await LeaderStack.create({ shard, heartbeatTimeout: '2s' });
});

afterAll(async () => {
  await stack?.close();
});

afterEach(() => {
  if (process.env.NSTANCE_LEADER_TEST_LOGS) for (const w of stack.workers) console.log(`--- ${w.spec.workerId}\n${w.log()}`);
});

test('a single worker stays leader, answering 200 at the same epoch, for well over the SDK local timeout', async () => {
  w1 = await stack.startWorker('w1', { partitionable: true });
  const { epoch } = await stack.waitForLeader(w1, 90_000);
  expect(epoch).toBe(1);

  const watchMs = 16_000;
  const until = Date.now() + watchMs;
  const misses: string[] = [];
  let samples = 0;
  while (Date.now() < until) {
    const s = await leaderStatusOf(w1);
    samples++;
    if (s.code !== 200 || s.epoch !== 1) misses.push(`${new Date().toISOString()} ${s.code} epoch ${s.epoch ?? '-'}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  expect(samples).toBeGreaterThan(30);
  expect(misses).toEqual([]);
  expect(w1.log()).not.toMatch(/cancelled by the SDK|is shutting down|lease lost/);
  const view = JSON.parse(await stack.cli(['leader', '--json'])) as { leader: { workerId: string; epoch: number } | null; candidates: { workerId: string; role: string }[] };
  expect(view.leader).toMatchObject({ workerId: 'w1', epoch: 1 });
  expect(view.candidates.map((c) => [c.workerId, c.role])).toEqual([['w1', 'leader']]);
});

test('after being cut off long enough to be counted lost, the only worker leads again', async () => {
  w1.temporalPath?.partition();
  await eventually('w1 to stop answering', async () => ((await leaderStatusOf(w1)).code === 503 ? true : undefined), 20_000, 100);
  // Past the 2 s heartbeat timeout on the server, so the workflow has timed the leader out.
  await new Promise((r) => setTimeout(r, 6_000));
  w1.temporalPath?.heal();

  const { epoch } = await stack.waitForLeader(w1, 60_000);
  expect(epoch).toBeGreaterThanOrEqual(2);
  const view = await eventually('w1 leading again in the workflow', async () => {
    const v = JSON.parse(await stack.cli(['leader', '--json'])) as { leader: { workerId: string; epoch: number } | null; candidates: { workerId: string; role: string }[] };
    return v.leader?.workerId === 'w1' && v.candidates.every((c) => c.role !== 'lost') ? v : undefined;
  }, 30_000, 500);
  expect(view.leader?.epoch).toBe(epoch);
  expect((await stack.eni()).epoch).toBe(epoch);
});

test('a leaderless run (nobody can lead) still continues as new once its history grows', async () => {
  // Its own leader workflow for a shard no worker serves, on the running worker's queue: no
  // candidate ever leads, and only signals grow its history.
  const lonely = `${shard}-nobody`;
  // The worker reads that shard's records for it: in production only that shard's workers (and policy) would.
  stack.alsoProveShard(lonely);
  const handle = await stack.h.client.workflow.start<typeof leaderWorkflow>('leaderWorkflow', {
    workflowId: leaderWorkflowId(lonely),
    taskQueue: shardTaskQueue(shard),
    args: [{ shard: lonely, heartbeatTimeoutMs: 2_000, maxHistoryLength: 30 }],
  });
  try {
    for (let i = 0; i < 20; i++) {
      await handle.signal(leaderResignSignal, { workerId: `ghost-${i}`, leaving: false, reason: 'test' });
      // Apart, so that each signal is a workflow task of its own (a pass of the leaderless loop).
      await new Promise((r) => setTimeout(r, 100));
    }
    const runs = await eventually('a continued run', async () => {
      const ids: string[] = [];
      for await (const e of stack.h.client.workflow.list({ query: `WorkflowId = '${leaderWorkflowId(lonely)}'` })) ids.push(e.runId);
      return ids.length >= 2 ? ids : undefined;
    }, 30_000, 500);
    expect(runs.length).toBeGreaterThanOrEqual(2);
    const current = await stack.h.client.workflow.getHandle(leaderWorkflowId(lonely)).describe();
    expect(current.status.name).toBe('RUNNING');
    expect(current.historyLength).toBeLessThan(60);
    expect(await handle.query(leaderStatusQuery)).toMatchObject({ shard: lonely, epoch: 0, candidates: [] });
  } finally {
    await stack.h.client.workflow.getHandle(leaderWorkflowId(lonely)).terminate('test finished').catch(() => undefined);
  }
});
