/**
 * Replacement within the group's bounds: members replaced in parallel up to max_surge,
 * never more in EC2 than size + surge; and a member flagged unhealthy that recovers
 * before it is removed is kept (its spare launch cancelled), not replaced.
 */
import { commandInstance } from '../../client/ops/instance';
import { groupStatus, waitForConvergence } from '../../client/ops/status';
import type { CallRecord } from '../support/faults';
import { eventually } from '../support/emulator';
import { useShard } from '../support/shard-fixture';

const fx = useShard('rpl', { worker: true, registrar: true });
const { ref, shard } = fx;

/** The group at `size`, every member in service. */
async function allInService(size: number) {
  await waitForConvergence(fx.client, ref, { timeoutMs: 120_000, size, pollMs: 300 });
  return eventually(`${size} in service`, async () => {
    const s = await groupStatus(fx.client, ref);
    return s.total === size && s.inService === size ? s : undefined;
  }, 60_000);
}

/** How many instances EC2 held at most, replayed from the calls that launched and terminated them. */
function mostHeld(calls: CallRecord[], heldBefore: number): number {
  let held = heldBefore;
  let most = held;
  const terminated = new Set<string>();
  for (const c of calls) {
    if (c.outcome !== 'ok') continue;
    if (c.command === 'RunInstances') held += 1;
    if (c.command === 'TerminateInstances') {
      for (const id of c.input.InstanceIds as string[]) {
        if (terminated.has(id)) continue;
        terminated.add(id);
        held -= 1;
      }
    }
    most = Math.max(most, held);
  }
  return most;
}

test('max_surge is honoured: four members replaced two at a time, EC2 never above size + surge', async () => {
  const config = { size: 4, web: { max_surge: 2, load_balancers: ['web'], drain_timeout: '3s' } };
  await fx.apply(config);
  const before = await allInService(4);
  const mark = fx.faults.calls.length;
  for (const m of before.members) await commandInstance(fx.client, shard, m.instanceId, 'replace', 'test');

  const after = await eventually('all four replaced', async () => {
    const s = await groupStatus(fx.client, ref);
    const fresh = s.members.filter((m) => !before.members.some((b) => b.instanceId === m.instanceId));
    return s.total === 4 && fresh.length === 4 && fresh.every((m) => m.phase === 'in-service') ? s : undefined;
  }, 120_000);
  const calls = fx.faults.calls.slice(mark);
  expect(calls.filter((c) => c.command === 'RunInstances' && c.outcome === 'ok')).toHaveLength(4);
  // The bound, and that it was used: two launches in flight together, not one at a time.
  expect(mostHeld(calls, 4)).toBe(6);
  expect(after.members.map((m) => m.instanceId)).not.toContain(before.members[0].instanceId);
  await fx.expectEmulatorMatchesGroups();
});

test('a member flagged unhealthy that recovers before it is removed is un-flagged and kept; its spare launch is cancelled', async () => {
  await fx.apply({ size: 2, web: { load_balancers: ['web'], drain_timeout: '3s' } });
  const before = await allInService(2);
  const [sick] = before.members;
  // New instances do not register for now: the replacement cannot serve before the member recovers.
  fx.registrar.silent.add('*');
  await fx.registrar.health(sick.instanceId, 'unhealthy', 'test: failing checks');
  const flagged = await eventually('flagged, with a spare launched', async () => {
    const s = await groupStatus(fx.client, ref);
    const m = s.members.find((x) => x.instanceId === sick.instanceId);
    const spare = s.members.find((x) => !before.members.some((b) => b.instanceId === x.instanceId));
    return m?.replacing?.reason === 'unhealthy' && spare ? { s, spare } : undefined;
  }, 60_000);

  await fx.registrar.health(sick.instanceId, 'healthy', 'test: checks pass again');
  const recovered = await eventually('un-flagged, the spare gone', async () => {
    const s = await groupStatus(fx.client, ref);
    const m = s.members.find((x) => x.instanceId === sick.instanceId);
    return m && !m.replacing && !m.leaving && s.total === 2 && !s.members.some((x) => x.instanceId === flagged.spare.instanceId) ? s : undefined;
  }, 60_000);
  expect(recovered.members.map((m) => m.instanceId).sort()).toEqual(before.members.map((m) => m.instanceId).sort());
  fx.registrar.silent.delete('*');
  // The recovered member's instance was never drained nor terminated.
  const terminatedIds = fx.faults.callsOf('TerminateInstances').flatMap((c) => c.input.InstanceIds as string[]);
  expect(terminatedIds).not.toContain(sick.ec2InstanceId);
  await waitForConvergence(fx.client, ref, { timeoutMs: 60_000, size: 2, pollMs: 300 });
  await fx.expectEmulatorMatchesGroups();
});
