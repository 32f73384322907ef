/**
 * Shard leadership across worker OS processes: election, kill -9 failover,
 * epoch fencing, a partitioned leader that must stop serving on its own, and a
 * fresh leader-workflow run (after a terminate) that resumes from the stored epoch.
 * Workers are real processes (dist CLI); EC2 is moto behind the ENI fault proxy.
 */
import { createLeaderActivities } from '../../activities/leader';
import { LEADER_TAG } from '../../adapters/ec2/network-interfaces';
import { ObjectStore } from '../../adapters/s3/objects';
import { moveLeaderNetwork } from '../../adapters/ec2/network-interfaces';
import { leaderWorkflowId } from '../../common/names';
import { eventually } from '../support/emulator';
import { LeaderStack, watchAnswering, type LeaderWorker } from '../support/leader-stack';
import { leaderStatusOf } from '../support/processes';

jest.setTimeout(180_000);

const shard = `ldr-${Date.now().toString(36)}`;
const HEARTBEAT_TIMEOUT_MS = 3_000;
let stack: LeaderStack;
let w1: LeaderWorker;
let w2: LeaderWorker;
let w3: LeaderWorker;

beforeAll(async () => {
  stack = await LeaderStack.create({ shard, heartbeatTimeout: `${HEARTBEAT_TIMEOUT_MS}ms` });
});

afterAll(async () => {
  await stack?.close();
});

afterEach(() => {
  // On failure, the worker logs say what each process saw.
  if (expect.getState().currentTestName && process.env.NSTANCE_LEADER_TEST_LOGS) for (const w of stack.workers) console.log(`--- ${w.spec.workerId}\n${w.log()}`);
});

interface View {
  shard: string;
  leader: { workerId: string; ec2InstanceId: string; epoch: number; since: string } | null;
  candidates: { workerId: string; role: string; lastSeen: string | null; agentAddress: string | null }[];
}
const view = async (): Promise<View> => JSON.parse(await stack.cli(['leader', '--json'])) as View;

/** Settled: exactly `workerId` answers, on its status endpoint (at `epoch`) and on its real agent API. */
const onlyLeader = async (workerId: string, epoch: number) => expect(await stack.settledAnswering(workerId, epoch)).toEqual([{ workerId, epoch, agentApi: true }]);

test('the first worker to start becomes leader and holds the ENI; later workers stand by', async () => {
  const startedAt = Date.now();
  w1 = await stack.startWorker('w1');
  const { epoch, eni } = await stack.waitForLeader(w1, 90_000);
  expect(epoch).toBe(1);
  expect(eni.attachment?.deviceIndex).toBe(1);
  expect(eni.epoch).toBe(1);

  w2 = await stack.startWorker('w2');
  // One at a time, so announcement order (which decides who leads next) is w1, w2, w3.
  await eventually('w2 announced', async () => ((await stack.cli(['leader', '--json'])).includes('"w2"') ? true : undefined), 60_000);
  w3 = await stack.startWorker('w3', { partitionable: true });
  const first = await eventually('three candidates', async () => {
    const v = await view();
    return v.candidates.length === 3 && v.candidates.every((c) => c.role !== 'lost') ? v : undefined;
  }, 60_000);
  expect(first.shard).toBe(shard);
  expect(first.leader).toMatchObject({ workerId: 'w1', ec2InstanceId: w1.ec2InstanceId, epoch: 1 });
  const since = Date.parse(first.leader?.since ?? '');
  expect(since).toBeGreaterThanOrEqual(startedAt);
  expect(since).toBeLessThanOrEqual(Date.now());
  expect(first.candidates.map((c) => [c.workerId, c.role])).toEqual([['w1', 'leader'], ['w2', 'standby'], ['w3', 'standby']]);
  // Each candidate announced where its agent API listens (what agents must reach).
  for (const w of [w1, w2, w3]) expect(first.candidates.find((c) => c.workerId === w.spec.workerId)?.agentAddress).toBe(new URL(w.agentUrl).host);
  // Last seen is Temporal's time of each live candidate's latest heartbeat: recent, and moving on.
  const seenAt = (v: View, id: string) => Date.parse(v.candidates.find((c) => c.workerId === id)?.lastSeen ?? '');
  for (const id of ['w1', 'w2', 'w3']) expect(Date.now() - seenAt(first, id)).toBeLessThan(HEARTBEAT_TIMEOUT_MS * 3);
  await eventually('every live candidate seen again later', async () => {
    const later = await view();
    return ['w1', 'w2', 'w3'].every((id) => seenAt(later, id) > seenAt(first, id)) ? true : undefined;
  }, HEARTBEAT_TIMEOUT_MS * 5, 500);
  await onlyLeader('w1', 1);
  expect((await leaderStatusOf(w2)).code).toBe(503);
});

test('kill -9 of the leader moves the ENI to another worker, and the audit log shows both epochs', async () => {
  w1.kill('SIGKILL');
  await w1.exited;
  const next = await stack.waitForAnyLeader(['w1'], 60_000);
  expect(next.spec.workerId).toBe('w2'); // the earliest live candidate
  const eni = await stack.eni();
  expect(eni.attachment?.instanceId).toBe(w2.ec2InstanceId);
  expect(eni.epoch).toBe(2);

  const audits = await eventually('two handoff audit entries', async () => {
    const entries = await stack.handoffAudits();
    return entries.length >= 2 ? entries : undefined;
  });
  expect(audits.map((a) => a.details)).toEqual([
    expect.objectContaining({ oldLeader: null, newLeader: 'w1', epoch: 1, reason: 'initial', newInstance: w1.ec2InstanceId }),
    expect.objectContaining({ oldLeader: 'w1', oldEpoch: 1, newLeader: 'w2', epoch: 2, reason: 'heartbeat-timeout', newInstance: w2.ec2InstanceId }),
  ]);
  // From detection to attach: positive, and well inside the move's own 30 s limit.
  expect(audits[1]?.details?.durationMs).toEqual(expect.any(Number));
  expect(Number(audits[1]?.details?.durationMs)).toBeGreaterThan(0);
  expect(Number(audits[1]?.details?.durationMs)).toBeLessThan(30_000);
  expect(audits[1]?.details?.heartbeatTimeoutMs).toBe(HEARTBEAT_TIMEOUT_MS);
  expect((await view()).candidates.find((c) => c.workerId === 'w1')?.role).toBe('lost');
});

test('leader-only writes from an old epoch are refused (ENI epoch tag, S3 leader record)', async () => {
  const acts = createLeaderActivities({ ec2: stack.ec2, objects: new ObjectStore({ s3: stack.h.aws.s3, bucket: stack.h.bucket }) });
  await expect(acts.writeLeaderRecord({ shard, epoch: 1, workerId: 'w1', since: new Date().toISOString() })).rejects.toMatchObject({ type: 'StaleEpoch' });
  await expect(
    moveLeaderNetwork({ ec2: stack.ec2, pollMs: 100 }, { interfaceId: stack.seed.leaderInterfaceId, instanceId: w1.ec2InstanceId, epoch: 1, workerId: 'w1', timeoutMs: 5_000 }),
  ).rejects.toMatchObject({ type: 'StaleEpoch' });
  // Nothing moved: still the epoch-2 leader's.
  const eni = await stack.eni();
  expect(eni.attachment?.instanceId).toBe(w2.ec2InstanceId);
  expect(eni.epoch).toBe(2);
  expect(LEADER_TAG.epoch).toBe('nstance:leader-epoch');
});

test('a partitioned leader (Temporal cut, process alive) stops serving within its lease, before anyone else serves', async () => {
  // Make the partitionable worker the leader first, gracefully.
  await stack.cli(['leader', 'handoff', '--to', 'w3']);
  const { epoch } = await stack.waitForLeader(w3);
  expect(epoch).toBe(3);

  const watch = watchAnswering(stack);
  const cutAt = Date.now();
  w3.temporalPath?.partition();
  const stoppedAfterMs = await eventually('the partitioned leader to stop answering', async () => ((await leaderStatusOf(w3)).code === 503 ? Date.now() - cutAt : undefined), 20_000, 100);
  expect(w3.alive()).toBe(true);
  // The lease (< heartbeat timeout), not the SDK's own local timeout (heartbeat timeout + 5 s):
  // it stopped before Temporal could even time it out and hand the ENI over.
  expect(stoppedAfterMs).toBeLessThan(HEARTBEAT_TIMEOUT_MS);

  const next = await stack.waitForAnyLeader(['w3'], 60_000);
  const seen = await watch.stop();
  expect(next.spec.workerId).toBe('w2');
  expect((await stack.eni()).epoch).toBe(4);
  // Never two at once, and w3's last answer came before w2's first.
  expect(seen.overlaps).toEqual([]);
  expect(seen.maxAnswering).toBeLessThanOrEqual(1);
  expect(seen.lastAnswerAt.get('w3') ?? 0).toBeLessThan(seen.firstAnswerAt.get('w2') ?? 0);
  // While cut off it must still not answer, even though its process runs.
  expect((await leaderStatusOf(w3)).code).toBe(503);

  // Healed, it re-announces itself and stands by under the new leader.
  w3.temporalPath?.heal();
  await eventually('w3 back as a standby', async () => ((await view()).candidates.find((c) => c.workerId === 'w3')?.role === 'standby' ? true : undefined), 60_000, 1_000);
  await onlyLeader('w2', 4);
});

test('a fresh run of the leader workflow (the old one terminated) resumes above the stored epoch and moves the ENI', async () => {
  const handle = stack.h.client.workflow.getHandle(leaderWorkflowId(shard));
  const oldRun = (await handle.describe()).runId;
  const before = { eni: (await stack.eni()).epoch ?? 0, record: (await stack.leaderRecord())?.epoch ?? 0 };
  expect(before).toEqual({ eni: 4, record: 4 });
  await handle.terminate('test: the leader workflow run is gone');

  // Nobody restarts it but the workers: their activities are "not found", so they announce
  // themselves again (signalWithStart starts a new run, with no state to carry).
  const status = await eventually('a new run with a leader whose ENI move finished', async () => {
    // A terminated run still answers queries: look only once a new run is running.
    const run = await handle.describe().catch(() => undefined);
    if (!run || run.runId === oldRun || run.status.name !== 'RUNNING') return undefined;
    const s = await stack.status().catch(() => undefined);
    return s?.leader && s.lastHandoff?.epoch === s.leader.epoch && s.lastHandoff.attachedAt ? s : undefined;
  }, 60_000, 500);
  expect(status.lastError).toBeUndefined();
  expect(status.epoch).toBe(before.eni + 1);
  const leader = stack.workers.find((w) => w.spec.workerId === status.leader?.workerId) as LeaderWorker;
  expect(leader.alive()).toBe(true);
  // Read back from EC2 and S3: attached to the live leader, and both fences at the new epoch.
  await stack.waitForLeader(leader);
  const eni = await stack.eni();
  expect(eni.attachment).toMatchObject({ instanceId: leader.ec2InstanceId, status: 'attached', deviceIndex: 1 });
  expect(eni.epoch).toBe(status.epoch);
  expect(eni.epoch).toBeGreaterThan(before.eni);
  expect(await stack.leaderRecord()).toMatchObject({ epoch: status.epoch, workerId: leader.spec.workerId, ec2InstanceId: leader.ec2InstanceId });
  // A new run's first election, whatever epoch it resumes from.
  const audits = await stack.handoffAudits();
  expect(audits.at(-1)?.details).toMatchObject({ epoch: status.epoch, reason: 'initial', newLeader: leader.spec.workerId });
  await onlyLeader(leader.spec.workerId, status.epoch);
});

test('an ENI move that fails is tried again by the workflow (same epoch, durable timer) until it lands; the CLI reports the failure', async () => {
  // Both live workers are candidates of the new run (each announced itself once its old activity was gone).
  const before = await eventually('two live candidates', async () => {
    const s = await stack.status();
    return s.leader && s.candidates.filter((c) => c.alive && !c.leaving).length === 2 ? s : undefined;
  }, 30_000, 500);
  const from = before.leader?.workerId;
  const to = from === 'w2' ? 'w3' : 'w2';
  const target = stack.workers.find((w) => w.spec.workerId === to) as LeaderWorker;
  const epoch = before.epoch + 1;
  const callsBefore = stack.proxy.calls.length;
  // Refused as unauthorized: the activity does not retry that, so only the workflow's repair can help.
  stack.proxy.injectAttachRejected(1);
  await expect(stack.cli(['leader', 'handoff', '--to', to])).rejects.toThrow(/handoff incomplete: .*UnauthorizedOperation/);
  const pending = await stack.status();
  expect(pending.leader).toMatchObject({ workerId: to, epoch });
  expect(pending.networkRepair).toMatchObject({ epoch, attempts: 1 });
  expect(pending.lastHandoff?.error).toMatch(/UnauthorizedOperation/);

  const repaired = await eventually('the ENI moved by a later attempt', async () => {
    const s = await stack.status();
    return !s.networkRepair && s.lastHandoff?.attachedAt ? s : undefined;
  }, 60_000, 500);
  expect(repaired.epoch).toBe(epoch);
  expect(repaired.lastError).toBeUndefined();
  expect(repaired.lastHandoff).toMatchObject({ to, epoch });
  expect(repaired.lastHandoff?.error).toBeUndefined();
  // Read back from EC2 and S3.
  const eni = await stack.eni();
  expect(eni.attachment).toMatchObject({ instanceId: target.ec2InstanceId, status: 'attached', deviceIndex: 1 });
  expect(eni.epoch).toBe(epoch);
  expect(await stack.leaderRecord()).toMatchObject({ epoch, workerId: to });
  const attaches = stack.proxy.calls.slice(callsBefore).filter((c) => c.action === 'AttachNetworkInterface');
  expect(attaches.map((c) => c.outcome)).toEqual(['injected-rejected', 'forwarded']);
  const audits = await eventually('a repair audit entry', async () => {
    const entries = await stack.audits('leader-network-repaired');
    return entries.length > 0 ? entries : undefined;
  });
  expect(audits.at(-1)?.details).toMatchObject({ leader: to, epoch, attempts: 2, instance: target.ec2InstanceId });
  await onlyLeader(to, epoch);
});
