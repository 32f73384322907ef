/**
 * Graceful leadership changes across worker OS processes: `nstance leader
 * handoff`, SIGTERM of the leader, an attach refused "in use" on the way, and
 * a leader workflow whose history stays bounded across many handoffs.
 */
import { AttachNetworkInterfaceCommand } from '@aws-sdk/client-ec2';
import { workerPolicy } from '../../common/iam/policy';
import { leaderWorkflowId } from '../../common/names';
import { MOTO_ACCOUNT } from '../support/faults';
import { recordHistory } from '../support/record-histories';
import { eventually } from '../support/emulator';
import { expectLinkToRunOf } from '../support/ui-link';
import { LeaderStack, watchAnswering, type LeaderWorker } from '../support/leader-stack';
import { withoutStatement } from '../support/worker-proof';

jest.setTimeout(180_000);

const shard = `lho-${Date.now().toString(36)}`;
const MAX_HANDOFFS_PER_RUN = 3;
const HEARTBEAT_TIMEOUT_MS = 3_000;
/** Nobody answering for longer than this during a graceful handoff is a regression (here it is below the 100 ms sampling). */
const MAX_GAP_MS = 10_000;
let stack: LeaderStack;
let w1: LeaderWorker;
let w2: LeaderWorker;
let w3: LeaderWorker;

interface View {
  epoch: number;
  leader: { workerId: string; epoch: number } | null;
  lastHandoff: { reason: string; inUseRetries?: number; to: string; epoch: number; error?: string } | null;
}
const view = async (): Promise<View> => JSON.parse(await stack.cli(['leader', '--json'])) as View;

beforeAll(async () => {
  stack = await LeaderStack.create({ shard, heartbeatTimeout: `${HEARTBEAT_TIMEOUT_MS}ms`, maxHandoffsPerRun: MAX_HANDOFFS_PER_RUN });
  w1 = await stack.startWorker('w1');
  await stack.waitForLeader(w1, 90_000);
  w2 = await stack.startWorker('w2');
  await eventually('w2 standing by', async () => ((await view()).leader && (await stack.cli(['leader'])).includes('standby') ? true : undefined), 60_000, 500);
});

afterAll(async () => {
  await stack?.close();
});

afterEach(() => {
  if (process.env.NSTANCE_LEADER_TEST_LOGS) for (const w of stack.workers) console.log(`--- ${w.spec.workerId}\n${w.log()}`);
});

/** Settled: exactly `workerId` answers, on its status endpoint (at `epoch`) and on its real agent API. */
const onlyLeader = async (workerId: string, epoch: number) => expect(await stack.settledAnswering(workerId, epoch)).toEqual([{ workerId, epoch, agentApi: true }]);

test('a graceful handoff: never two servers answering, the old leader stops before the ENI moves, and the gap is bounded', async () => {
  await onlyLeader('w1', 1);
  const callsBefore = stack.proxy.calls.length;
  const watch = watchAnswering(stack);
  const out = JSON.parse(await stack.cli(['leader', 'handoff', '--json'])) as { from: string; to: string; epoch: number };
  expect(out).toMatchObject({ from: 'w1', to: 'w2', epoch: 2 });
  await stack.waitForLeader(w2);
  const seen = await watch.stop();
  expect(seen.overlaps).toEqual([]);
  expect(seen.maxAnswering).toBeLessThanOrEqual(1);
  expect(seen.samples).toBeGreaterThan(3);
  // Fencing order, from the fault proxy's call log: w1's last answer came before the ENI was detached from it.
  const firstDetach = stack.proxy.calls.slice(callsBefore).find((c) => c.action === 'DetachNetworkInterface');
  expect(firstDetach).toBeDefined();
  expect(seen.lastAnswerAt.get('w1') ?? Infinity).toBeLessThan(firstDetach?.at ?? 0);
  expect(seen.lastAnswerAt.get('w1') ?? Infinity).toBeLessThan(seen.firstAnswerAt.get('w2') ?? 0);
  // Between "old stopped" and "new serves" nobody answers (docs/leader.md "Limits"): measured and bounded.
  console.log(
    seen.zeroSamples === 0
      ? `graceful handoff: no sample (every 100 ms, ${seen.samples} samples) found nobody answering`
      : `graceful handoff: nobody answered for at most ${seen.longestZeroMs} ms (${seen.zeroSamples} of ${seen.samples} samples)`,
  );
  expect(seen.longestZeroMs).toBeLessThan(MAX_GAP_MS);
  await onlyLeader('w2', 2);
  expect((await view()).lastHandoff).toMatchObject({ reason: 'requested', to: 'w2', epoch: 2 });
});

test('the fault proxy enforces AWS attach rules: attaching an ENI that is in use is refused', async () => {
  await expect(
    stack.ec2.send(new AttachNetworkInterfaceCommand({ NetworkInterfaceId: stack.seed.leaderInterfaceId, InstanceId: w1.ec2InstanceId, DeviceIndex: 1 })),
  ).rejects.toMatchObject({ name: 'InvalidParameterValue', message: expect.stringMatching(/in use/) });
  expect((await stack.eni()).attachment?.instanceId).toBe(w2.ec2InstanceId);
});

test('an attach that fails with "in use" is retried to success', async () => {
  const before = stack.proxy.calls.length;
  stack.proxy.injectAttachInUse(1);
  const printed = await stack.cli(['leader', 'handoff', '--to', 'w1']);
  await stack.waitForLeader(w1);
  // It prints the Web UI link of the leader run it signalled.
  expect(printed).toMatch(/^shard \S+: leader w2 -> w1 at epoch 3\n/);
  await expectLinkToRunOf(stack.h.client, printed, leaderWorkflowId(stack.shard));
  const attaches = stack.proxy.calls.slice(before).filter((c) => c.action === 'AttachNetworkInterface');
  expect(attaches.map((c) => c.outcome)).toEqual(['injected-in-use', 'forwarded']);
  expect(attaches.every((c) => c.instanceId === w1.ec2InstanceId)).toBe(true);
  expect((await view()).lastHandoff).toMatchObject({ to: 'w1', epoch: 3, inUseRetries: 1 });
  const audits = await stack.handoffAudits();
  expect(audits.at(-1)?.details).toMatchObject({ newLeader: 'w1', epoch: 3, inUseRetries: 1 });
});

test('a leader that receives SIGTERM hands over before it exits', async () => {
  w3 = await stack.startWorker('w3');
  await eventually('three live candidates', async () => ((await stack.cli(['leader'])).match(/standby/g)?.length === 2 ? true : undefined), 60_000, 500);
  const watch = watchAnswering(stack);
  w1.kill('SIGTERM');
  expect(await w1.exited).toBe(0);
  const exitedAt = w1.exitedAt() ?? 0;
  const next = await stack.waitForAnyLeader(['w1']);
  const seen = await watch.stop();
  expect(next.spec.workerId).toBe('w2');
  expect(seen.overlaps).toEqual([]);
  expect(seen.maxAnswering).toBeLessThanOrEqual(1);
  expect(w1.log()).toMatch(/SIGTERM: handing over leadership before exit/);
  expect((await view()).lastHandoff).toMatchObject({ reason: 'worker-shutdown', to: 'w2', epoch: 4 });
  // A real handover, not a plain shutdown: w1 itself asked (a dying worker's activity would make it
  // 'leader-workflow'), and it waited until EC2 showed the ENI on w2 before it exited.
  const audit = (await stack.handoffAudits()).find((a) => a.details?.epoch === 4);
  expect(audit?.actor).toBe('worker w1');
  expect(audit?.details).toMatchObject({ oldLeader: 'w1', newLeader: 'w2', newInstance: w2.ec2InstanceId });
  expect(Date.parse(String(audit?.details?.attachedAt))).toBeLessThan(exitedAt);
  expect(w1.log()).toMatch(/resigned: w2 leads at epoch 4/);
  await onlyLeader('w2', 4);
  // A replay fixture with elections, a graceful handoff, an in-use retry and a SIGTERM handover, under the
  // payload codec (leader-handoffs.json, recorded before it, stays as the plaintext one).
  recordHistory(leaderWorkflowId(shard), 'leader-handoffs-encrypted');
});

test('the leader workflow history stays bounded across many handoffs (continue-as-new)', async () => {
  const handle = stack.h.client.workflow.getHandle(leaderWorkflowId(shard));
  const firstRun = (await handle.describe()).runId;
  const start = (await view()).epoch;
  const generations = async () => Object.fromEntries((await stack.status()).candidates.filter((c) => c.alive).map((c) => [c.workerId, c.generation]));
  const generationsBefore = await generations();
  const rounds = 6;
  for (let i = 0; i < rounds; i++) {
    const to = i % 2 === 0 ? 'w3' : 'w2';
    await stack.cli(['leader', 'handoff', '--to', to]);
  }
  const last = await stack.waitForLeader(w2);
  expect(last.epoch).toBe(start + rounds);
  const runs: string[] = [];
  for await (const e of stack.h.client.workflow.list({ query: `WorkflowId = '${leaderWorkflowId(shard)}'` })) runs.push(e.runId);
  // Runs hold at most MAX_HANDOFFS_PER_RUN handoffs each, so there were several.
  expect(runs.length).toBeGreaterThanOrEqual(Math.floor((start + rounds) / MAX_HANDOFFS_PER_RUN));
  const current = await handle.describe();
  expect(current.runId).not.toBe(firstRun);
  expect(current.historyLength).toBeLessThan(60 * MAX_HANDOFFS_PER_RUN);
  await onlyLeader('w2', start + rounds);

  // The old runs' activities end "not found"; the new run has restarted them, so the workers
  // must not announce themselves again (a new generation would hide their next death).
  // Past the participant's wait (two heartbeat timeouts) with slack:
  await new Promise((r) => setTimeout(r, HEARTBEAT_TIMEOUT_MS * 3));
  const generationsAfter = await generations();
  if (JSON.stringify(generationsAfter) !== JSON.stringify(generationsBefore)) {
    // Which worker announced again, and why, in its own words.
    for (const w of stack.workers) console.log(`--- ${w.spec.workerId}: ${w.log().split('\n').filter((l) => l.startsWith('leadership:')).join('\n')}`);
  }
  expect(generationsAfter).toEqual(generationsBefore);
  // So a stand-by killed now is counted lost on its first heartbeat timeout, not after a
  // further schedule-to-start timeout of a stand-by started for a new generation.
  const killedAt = Date.now();
  w3.kill('SIGKILL');
  await w3.exited;
  const lost = await eventually('w3 counted lost', async () => (await stack.status()).candidates.find((c) => c.workerId === 'w3' && !c.alive), 30_000, 250).catch((err: unknown) => {
    // Seen once in CI, under load: the status query kept failing. What the live workers said then:
    for (const w of stack.workers.filter((x) => x !== w3)) console.log(`--- ${w.spec.workerId}, last lines:\n${w.log().split('\n').slice(-40).join('\n')}`);
    throw err;
  });
  expect(Date.parse(lost.lostAt ?? '') - killedAt).toBeLessThan(HEARTBEAT_TIMEOUT_MS * 3);
  await onlyLeader('w2', start + rounds);
});

test('an attach applied by EC2 whose answer is lost is not attached twice: the retry meets "in use", re-reads, and finds it done', async () => {
  const w4 = await stack.startWorker('w4');
  await eventually('w4 standing by', async () => ((await stack.cli(['leader'])).match(/standby/g)?.length === 1 ? true : undefined), 60_000, 500);
  const before = stack.proxy.calls.length;
  stack.proxy.injectAttachResponseLost(1);
  await stack.cli(['leader', 'handoff', '--to', 'w4']);
  const { epoch, eni } = await stack.waitForLeader(w4);
  expect(eni.attachment?.instanceId).toBe(w4.ec2InstanceId);
  const attaches = stack.proxy.calls.slice(before).filter((c) => c.action === 'AttachNetworkInterface');
  // One attach reached EC2; every later one was refused as "in use" rather than applied again.
  expect(attaches[0]?.outcome).toBe('response-lost');
  expect(attaches.filter((c) => c.outcome === 'forwarded' || c.outcome === 'response-lost')).toHaveLength(1);
  expect(attaches.slice(1).every((c) => c.outcome === 'in-use')).toBe(true);
  expect((await view()).lastHandoff).toMatchObject({ to: 'w4', epoch });
  expect((await view()).lastHandoff?.error).toBeUndefined();
  await onlyLeader('w4', epoch);
});

test('the IAM proof covers every AWS call of the worker processes (not only the ENI moves), and fails without a statement they need', async () => {
  const proof = await stack.proveWorkerCalls();
  console.log(`IAM proof of the worker processes: ${proof.distinct} distinct requests, from ${JSON.stringify(proof.calls)}`);
  expect(Object.keys(proof.calls)).toEqual(
    expect.arrayContaining(['s3:GetObject', 's3:PutObject', 'secretsmanager:GetSecretValue', 'ec2:DescribeNetworkInterfaces', 'ec2:AttachNetworkInterface', 'ec2:DetachNetworkInterface', 'ec2:CreateTags']),
  );
  const policy = workerPolicy(stack.config, { account: MOTO_ACCOUNT });
  const needed: [string, RegExp][] = [
    ['ConfigStateAndAudit', /s3:PutObject on arn:aws:s3:::[^ ]+\/shard\/[^ ]+: ImplicitlyDenied/],
    ['LeaderNetworkInterface', /ec2:AttachNetworkInterface on arn:aws:ec2:[^ ]+:network-interface\/eni-[^ ]+ .*ImplicitlyDenied/],
    ['LeaderNetworkWorkers', /ec2:DetachNetworkInterface on arn:aws:ec2:[^ ]+:instance\/i-[^ ]+ .*ImplicitlyDenied/],
    ['Ec2Describe', /ec2:DescribeNetworkInterfaces on \*.*ImplicitlyDenied/],
    ['SecretsUnderPrefix', /secretsmanager:GetSecretValue on arn:aws:secretsmanager:[^ ]+:secret:nstance\/[^ ]+: ImplicitlyDenied/],
  ];
  for (const [sid, refusal] of needed) await expect(stack.proveWorkerCalls(withoutStatement(policy, sid))).rejects.toThrow(refusal);
});
