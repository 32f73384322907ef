/**
 * serveAsLeader in a mocked activity context: it records SDK heartbeats (so Core's
 * local heartbeat timer never cancels a healthy leader) and tells the reasons for
 * a cancellation apart, stepping down for every one of them.
 */
import { ActivityNotFoundError, type Client } from '@temporalio/client';
import { ActivityCancellationDetails, ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { createLeaderServeActivities, leaseTiming, type LostReason } from '../../activities/leader-serve';
import { MutableLeadershipGate } from '../../workers/leadership/gate';

/** The direct-RPC heartbeat: accepted by default; a test can make it hang or be rejected. */
type DirectHeartbeat = () => Promise<void>;

function setup(heartbeat: DirectHeartbeat = async () => undefined) {
  const gate = new MutableLeadershipGate();
  const dropped: LostReason[] = [];
  let active = 0;
  const client = { activity: { heartbeat: () => heartbeat() } } as unknown as Client;
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

test('cancelled by Core because the server no longer knows it (the run continued as new): steps down and waits before re-announcing', async () => {
  const t = setup();
  await until(() => t.gate.state.leader);
  t.env.cancel('NOT_FOUND', new ActivityCancellationDetails({ notFound: true }));
  await expect(t.run).rejects.toMatchObject({ type: 'LeaseLost' });
  expect(t.gate.state.leader).toBe(false);
  expect(t.dropped).toEqual(['not-found']);
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

test('partitioned (heartbeat RPCs hang): steps down within the lease, before the heartbeat timeout', async () => {
  let hang = false;
  const t = setup(() => (hang ? new Promise<void>(() => undefined) : Promise.resolve()));
  await until(() => t.gate.state.leader && t.sdkHeartbeats.length >= 1);
  const cutAt = Date.now();
  hang = true;
  await until(() => !t.gate.state.leader, 2_000);
  const { leaseMs } = leaseTiming(2_000);
  // Counted from the last accepted heartbeat's send, so at most the lease after the cut (plus timer slack).
  expect(Date.now() - cutAt).toBeLessThan(2_000);
  expect(Date.now() - cutAt).toBeLessThanOrEqual(leaseMs + 250);
  await expect(t.run).rejects.toMatchObject({ type: 'LeaseLost' });
  expect(t.dropped).toEqual(['lease-lost']);
});

test('heartbeat rejected "not found" (timed out by the server): steps down at once', async () => {
  let reject = false;
  const t = setup(() => (reject ? Promise.reject(new ActivityNotFoundError('not found')) : Promise.resolve()));
  await until(() => t.gate.state.leader && t.sdkHeartbeats.length >= 1);
  reject = true;
  const rejectedAt = Date.now();
  await expect(t.run).rejects.toMatchObject({ type: 'LeaseLost' });
  // One renew interval, not the lease.
  expect(Date.now() - rejectedAt).toBeLessThan(leaseTiming(2_000).leaseMs);
  expect(t.gate.state.leader).toBe(false);
  expect(t.dropped).toEqual(['not-found']);
});
