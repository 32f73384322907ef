/**
 * A real (simulated) agent on the worker's agent API, seen through the worker's /metrics: its registration,
 * the missed health reports that make it unhealthy, and the unhealthy and pending gauges while its
 * replacement waits for EC2 capacity (the fault proxy refuses the replacement's launches), each checked
 * against what really happened: the agents that got a certificate, the signals its workflow received, the
 * group's members and EC2's instances.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { instanceWorkflowId } from '../../common/names';
import { groupStatus } from '../../client/ops/status';
import { SimulatedFleet } from '../../client/agent/fleet';
import type { HealthTransition } from '../../workflows/definitions';
import { eventually } from '../support/emulator';
import { signalsIn } from '../support/history';
import { sample } from '../support/metrics-scrape';
import { useObservedShard } from '../support/observed-shard';

jest.setTimeout(300_000);

const o = useObservedShard('agents');
const { shard, ref } = o;
const labels = { shard, tenant: 'default', group: 'web' };
/** The Registrar's "registered" and the agent's own are both heard: a nonce outlives neither (10 s here). */
const REGISTRATION_TIMEOUT_MS = 10_000;
let fleet: SimulatedFleet | undefined;
afterAll(async () => fleet?.stop());

test("the scrape counts a new member's agent registering, the missed health reports that make it unhealthy, and the unhealthy and pending gauges while its replacement waits for capacity", async () => {
  const { stack } = o;
  const counts = (t: string) => ({
    registered: sample(t, 'nstance_agent_registrations_total', { tenant: 'default', group: 'web', kind: 'new' }) ?? 0,
    missed: sample(t, 'nstance_agent_missed_health_reports_total') ?? 0,
  });
  // The Registrar signalled the members so far (no agent asked). Once their nonces have expired, only a new member's
  // agent can register.
  const first = await groupStatus(stack.h.client, ref);
  const launched = Math.max(...first.members.map((m) => Date.parse(m.launchedAt ?? '') || Date.now()));
  await new Promise((r) => setTimeout(r, Math.max(0, launched + REGISTRATION_TIMEOUT_MS + 1_000 - Date.now())));
  expect(counts(await o.scrape())).toEqual({ registered: 0, missed: 0 });
  const agentApi = new URL(o.w1.agentUrl).host;
  const agents = new SimulatedFleet({ ec2: stack.h.aws.ec2, shard, resolveAddress: () => agentApi, stateRoot: fs.mkdtempSync(path.join(stack.logDir, 'fleet-')), pollMs: 300 }).start();
  fleet = agents;
  const size = (await groupStatus(stack.h.client, ref, { limit: 0 })).desired + 1;
  await stack.cli(['group', 'scale', 'default/web', String(size), '--bucket', stack.h.bucket]);
  const [agent] = await eventually("the new member's agent registered", async () => (agents.registered().length > 0 ? agents.registered() : undefined), 60_000, 250);
  const registered = await eventually('the scrape to count it', async () => {
    const c = counts(await o.scrape());
    return c.registered > 0 ? c : undefined;
  }, 20_000, 1_000);
  expect(registered.registered).toBe(agents.registered().length);
  await eventually(`default/web to serve ${size}`, async () => ((await groupStatus(stack.h.client, ref, { limit: 0 })).inService === size ? true : undefined), 60_000);

  // EC2 has no capacity for the next 4 launches: the replacement an unhealthy member gets waits (5 s, 10 s, 20 s...
  // between tries), provisioning, and the unhealthy member stays until it serves (create before destroy).
  const refusedBefore = o.stack.proxy.census.snapshot().actions['ec2:RunInstances']?.outcomes.InsufficientInstanceCapacity ?? 0;
  stack.proxy.injectError('RunInstances', 'InsufficientInstanceCapacity', 4);
  // Silenced, it is unhealthy after 3 missed intervals of 3 s: its workflow is told once, and the scrape counts it.
  agents.silence(agent as string);
  const unhealthy = async () =>
    (await signalsIn<HealthTransition>(stack.h.client, instanceWorkflowId(shard, agent as string), 'instanceHealth')).filter((x) => x.arg.status === 'unhealthy' && /missed intervals/.test(x.arg.reason)).length;
  await eventually('its workflow told it is unhealthy', async () => ((await unhealthy()) > 0 ? true : undefined), 45_000);
  const missed = await eventually('the scrape to count the missed reports', async () => {
    const c = counts(await o.scrape());
    return c.missed > 0 ? c : undefined;
  }, 20_000, 1_000);
  expect(missed.missed).toBe(await unhealthy());

  const waiting = await eventually('the scrape to show the unhealthy member and its pending replacement', async () => {
    const t = await o.scrape();
    if (sample(t, 'nstance_group_unhealthy', labels) !== 1 || sample(t, 'nstance_group_pending', labels) !== 1) return undefined;
    const [status, inEc2] = [await groupStatus(stack.h.client, ref), await o.groupInstancesInEc2()];
    return { text: t, status, inEc2 };
  }, 60_000, 1_000);
  // As it really was: the silenced agent's member unhealthy and staying, in EC2; its replacement provisioning with
  // no EC2 instance yet (EC2 refused it capacity); EC2 running just the group's size.
  const sick = waiting.status.members.filter((m) => m.health === 'unhealthy' && !m.leaving);
  expect(sick.map((m) => m.instanceId)).toEqual([agent]);
  expect(waiting.inEc2.runningIds).toContain(sick[0]?.ec2InstanceId);
  const provisioning = waiting.status.members.filter((m) => m.phase === 'provisioning');
  expect(provisioning).toHaveLength(1);
  expect(provisioning[0]?.ec2InstanceId).toBeUndefined();
  expect(waiting.inEc2.running).toBe(size);
  expect(sample(waiting.text, 'nstance_group_running', labels)).toBe(size);
  expect((o.stack.proxy.census.snapshot().actions['ec2:RunInstances']?.outcomes.InsufficientInstanceCapacity ?? 0) - refusedBefore).toBeGreaterThanOrEqual(1);

  // Capacity comes back: the replacement serves, the unhealthy member goes, and both gauges are 0 again.
  await eventually('the gauges back to no unhealthy and no pending member', async () => {
    const t = await o.scrape();
    return sample(t, 'nstance_group_unhealthy', labels) === 0 && sample(t, 'nstance_group_pending', labels) === 0 && sample(t, 'nstance_group_in_service', labels) === size ? true : undefined;
  }, 150_000, 1_000);
  expect((await groupStatus(stack.h.client, ref)).members.some((m) => m.instanceId === agent && !m.leaving && m.phase !== 'terminated')).toBe(false);
});
