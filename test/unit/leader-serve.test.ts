/**
 * serveAsLeader in a mocked activity context: it records SDK heartbeats (so Core's
 * local heartbeat timer never cancels a healthy leader) and tells the reasons for
 * a cancellation apart, stepping down for every one of them.
 */
import type { Client } from '@temporalio/client';
import { ActivityCancellationDetails, ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { createLeaderServeActivities, type LostReason } from '../../activities/leader-serve';
import { MutableLeadershipGate } from '../../workers/leadership/gate';

function setup() {
  const gate = new MutableLeadershipGate();
  const dropped: LostReason[] = [];
  let active = 0;
  // Only the direct-RPC heartbeat is used; it is always accepted here.
  const client = { activity: { heartbeat: async () => undefined } } as unknown as Client;
  const acts = createLeaderServeActivities({
    gate,
    client,
    workerId: 'w1',
    onDropped: (why) => dropped.push(why),
    onActivity: () => {
      active++;
      return () => void active--;
    },
  });
  // The failures below are expected: keep the SDK's activity log quiet.
  const env = new MockActivityEnvironment({ heartbeatTimeoutMs: 2_000 }, { logger: new DefaultLogger('ERROR') });
  const sdkHeartbeats: unknown[] = [];
  env.on('heartbeat', (d: unknown) => sdkHeartbeats.push(d));
  const run = env.run(acts.serveAsLeader, { shard: 's', workerId: 'w1', epoch: 7, heartbeatTimeoutMs: 2_000 });
  return { gate, dropped, env, sdkHeartbeats, run, active: () => active };
}

async function until(check: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('a serving leader records SDK heartbeats after accepted ones (Core must not time it out locally)', async () => {
  const t = setup();
  await until(() => t.sdkHeartbeats.length >= 2);
  expect(t.gate.state).toEqual({ leader: true, epoch: 7 });
  expect(t.sdkHeartbeats[0]).toEqual({ epoch: 7 });
  expect(t.active()).toBe(1);
  t.env.cancel('CANCELLED', new ActivityCancellationDetails({ cancelRequested: true }));
  await expect(t.run).rejects.toBeInstanceOf(CancelledFailure);
  expect(t.gate.state.leader).toBe(false);
  expect(t.dropped).toEqual([]);
  expect(t.active()).toBe(0);
});

test('cancelled by Core (local timeout / not found): steps down, fails LeaseLost and asks to re-announce', async () => {
  const t = setup();
  await until(() => t.gate.state.leader);
  t.env.cancel('TIMED_OUT', new ActivityCancellationDetails({ notFound: true, timedOut: true }));
  await expect(t.run).rejects.toMatchObject({ type: 'LeaseLost' });
  expect(t.gate.state.leader).toBe(false);
  expect(t.dropped).toEqual(['cancelled-by-sdk']);
});

test('worker shutdown: steps down and fails WorkerShutdown without re-announcing', async () => {
  const t = setup();
  await until(() => t.gate.state.leader);
  t.env.cancel('WORKER_SHUTDOWN', new ActivityCancellationDetails({ workerShutdown: true }));
  const err: unknown = await t.run.catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ApplicationFailure);
  expect((err as ApplicationFailure).type).toBe('WorkerShutdown');
  expect(t.gate.state.leader).toBe(false);
  expect(t.dropped).toEqual([]);
});
