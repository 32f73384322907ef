/**
 * Shard leadership across worker OS processes: election, kill -9 failover,
 * epoch fencing, and a partitioned leader that must stop serving on its own.
 * Workers are real processes (dist CLI); EC2 is moto behind the ENI fault proxy.
 */
import { createLeaderActivities } from '../../activities/leader';
import { LEADER_TAG } from '../../activities/ec2/network-interfaces';
import { ObjectStore } from '../../activities/s3/objects';
import { moveLeaderNetwork } from '../../activities/ec2/network-interfaces';
import { eventually } from '../support/emulator';
import { LeaderStack, type LeaderWorker } from '../support/leader-stack';
import { answering, leaderStatusOf } from '../support/processes';

jest.setTimeout(180_000);

const shard = `ldr-${Date.now().toString(36)}`;
let stack: LeaderStack;
let w1: LeaderWorker;
let w2: LeaderWorker;
let w3: LeaderWorker;

beforeAll(async () => {
  stack = await LeaderStack.create({ shard, heartbeatTimeout: '3s' });
});

afterAll(async () => {
  await stack?.close();
});

afterEach(() => {
  // On failure, the worker logs say what each process saw.
  if (expect.getState().currentTestName && process.env.NSTANCE_LEADER_TEST_LOGS) for (const w of stack.workers) console.log(`--- ${w.spec.workerId}\n${w.log()}`);
});

test('the first worker to start becomes leader and holds the ENI; later workers stand by', async () => {
  w1 = await stack.startWorker('w1');
  const { epoch, eni } = await stack.waitForLeader(w1, 90_000);
  expect(epoch).toBe(1);
  expect(eni.attachment?.deviceIndex).toBe(1);
  expect(eni.epoch).toBe(1);

  w2 = await stack.startWorker('w2');
  // One at a time, so announcement order (which decides who leads next) is w1, w2, w3.
  await eventually('w2 announced', async () => ((await stack.cli(['leader', '--json'])).includes('"w2"') ? true : undefined), 60_000);
  w3 = await stack.startWorker('w3', { partitionable: true });
  const view = await eventually('three candidates', async () => {
    const v = JSON.parse(await stack.cli(['leader', '--json'])) as { leader: { workerId: string; ec2InstanceId: string; epoch: number }; candidates: { workerId: string; role: string; lastSeen: string | null }[] };
    return v.candidates.length === 3 && v.candidates.every((c) => c.role !== 'lost') ? v : undefined;
  }, 60_000);
  expect(view.leader).toMatchObject({ workerId: 'w1', ec2InstanceId: w1.ec2InstanceId, epoch: 1 });
  expect(view.candidates.map((c) => [c.workerId, c.role])).toEqual([['w1', 'leader'], ['w2', 'standby'], ['w3', 'standby']]);
  expect(view.candidates.every((c) => c.lastSeen !== null)).toBe(true);
  expect(await answering(stack.live())).toEqual([{ workerId: 'w1', epoch: 1 }]);
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
  expect(typeof audits[1]?.details?.durationMs).toBe('number');
  const view = JSON.parse(await stack.cli(['leader', '--json'])) as { candidates: { workerId: string; role: string }[] };
  expect(view.candidates.find((c) => c.workerId === 'w1')?.role).toBe('lost');
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

test('a partitioned leader (Temporal cut, process alive) stops serving agents within a few seconds', async () => {
  // Make the partitionable worker the leader first, gracefully.
  await stack.cli(['leader', 'handoff', '--to', 'w3']);
  const { epoch } = await stack.waitForLeader(w3);
  expect(epoch).toBe(3);

  const cutAt = Date.now();
  w3.temporalPath?.partition();
  const stoppedAfterMs = await eventually('the partitioned leader to stop answering', async () => ((await leaderStatusOf(w3)).code === 503 ? Date.now() - cutAt : undefined), 20_000, 100);
  expect(w3.alive()).toBe(true);
  // Lease (< heartbeat timeout of 3 s) plus polling slack; never as long as a lockfile's TTL.
  expect(stoppedAfterMs).toBeLessThan(8_000);

  const next = await stack.waitForAnyLeader(['w3'], 60_000);
  expect(next.spec.workerId).toBe('w2');
  expect((await stack.eni()).epoch).toBe(4);
  // While cut off it must still not answer, even though its process runs.
  expect((await leaderStatusOf(w3)).code).toBe(503);

  // Healed, it re-announces itself and stands by under the new leader.
  w3.temporalPath?.heal();
  await eventually('w3 back as a standby', async () => {
    const v = JSON.parse(await stack.cli(['leader', '--json'])) as { candidates: { workerId: string; role: string }[] };
    return v.candidates.find((c) => c.workerId === 'w3')?.role === 'standby' ? true : undefined;
  }, 60_000, 1_000);
  expect(await answering(stack.live())).toEqual([{ workerId: 'w2', epoch: 4 }]);
});
