/**
 * Graceful leadership changes across worker OS processes: `nstance leader
 * handoff`, SIGTERM of the leader, an attach refused "in use" on the way, and
 * a leader workflow whose history stays bounded across many handoffs.
 */
import { AttachNetworkInterfaceCommand } from '@aws-sdk/client-ec2';
import { leaderWorkflowId } from '../../common/names';
import { eventually } from '../support/emulator';
import { LeaderStack, watchAnswering, type LeaderWorker } from '../support/leader-stack';
import { answering } from '../support/processes';

jest.setTimeout(180_000);

const shard = `lho-${Date.now().toString(36)}`;
const MAX_HANDOFFS_PER_RUN = 3;
let stack: LeaderStack;
let w1: LeaderWorker;
let w2: LeaderWorker;
let w3: LeaderWorker;

interface View {
  epoch: number;
  leader: { workerId: string; epoch: number } | null;
  lastHandoff: { reason: string; inUseRetries?: number; to: string; epoch: number } | null;
}
const view = async (): Promise<View> => JSON.parse(await stack.cli(['leader', '--json'])) as View;

beforeAll(async () => {
  stack = await LeaderStack.create({ shard, heartbeatTimeout: '3s', maxHandoffsPerRun: MAX_HANDOFFS_PER_RUN });
  w1 = await stack.startWorker('w1');
  await stack.waitForLeader(w1, 90_000);
  w2 = await stack.startWorker('w2');
  await eventually('w2 standing by', async () => ((await view()).leader && (await stack.cli(['leader'])).includes('standby') ? true : undefined), 60_000, 500);
});

afterAll(async () => {
  await stack?.close();
});

test('a graceful handoff keeps exactly one server answering agents at every moment checked', async () => {
  expect(await answering(stack.live())).toEqual([{ workerId: 'w1', epoch: 1 }]);
  const watch = watchAnswering(stack);
  const out = JSON.parse(await stack.cli(['leader', 'handoff', '--json'])) as { from: string; to: string; epoch: number };
  expect(out).toMatchObject({ from: 'w1', to: 'w2', epoch: 2 });
  await stack.waitForLeader(w2);
  const seen = await watch.stop();
  expect(seen.maxAnswering).toBeLessThanOrEqual(1);
  expect(seen.samples).toBeGreaterThan(3);
  expect(await answering(stack.live())).toEqual([{ workerId: 'w2', epoch: 2 }]);
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
  await stack.cli(['leader', 'handoff', '--to', 'w1']);
  await stack.waitForLeader(w1);
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
  const next = await stack.waitForAnyLeader(['w1']);
  const seen = await watch.stop();
  expect(next.spec.workerId).toBe('w2');
  expect(seen.maxAnswering).toBeLessThanOrEqual(1);
  expect(w1.log()).toMatch(/SIGTERM: handing over leadership before exit/);
  expect((await view()).lastHandoff).toMatchObject({ reason: 'worker-shutdown', to: 'w2', epoch: 4 });
  expect(await answering(stack.live())).toEqual([{ workerId: 'w2', epoch: 4 }]);
});

test('the leader workflow history stays bounded across many handoffs (continue-as-new)', async () => {
  const handle = stack.h.client.workflow.getHandle(leaderWorkflowId(shard));
  const firstRun = (await handle.describe()).runId;
  const start = (await view()).epoch;
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
  expect(await answering(stack.live())).toEqual([{ workerId: 'w2', epoch: start + rounds }]);
});
