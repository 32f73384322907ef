/**
 * Drift rotation: a changed instance type replaces every member, create-before-destroy, with EC2
 * never holding more than size + surge (sampled throughout, and replayed from the calls), oldest first;
 * `group status --wait` prints its progress; the reason is on the member and in the audit log; `nstance
 * plan` says so beforehand. Changed vars rotate nothing.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as status from '../../client/ops/status';
import { groupStatus, waitForConvergence } from '../../client/ops/status';
import type { AuditEntry, GroupStatus, Member, StatusPage } from '../../common/types';
import type { CallRecord } from '../support/faults';
import { groupWorkflowId } from '../../common/names';
import { runCli } from '../support/cli';
import { recordHistory } from '../support/record-histories';
import { configText } from '../support/fixtures';
import { ALIVE_STATES, eventually, listKeys, readJson, shardInstances } from '../support/emulator';
import { useShard } from '../support/shard-fixture';

const SIZE = 3;
const WEB = { load_balancers: ['web'], drain_timeout: '2s' };
const fx = useShard('drift', { worker: true, registrar: true, config: { size: SIZE, reconcileInterval: '2s', web: WEB } });
const { ref, shard } = fx;
const dir = mkdtempSync(join(tmpdir(), 'nstance-drift-'));

function configFile(web: Record<string, unknown>): string {
  const file = join(dir, `config-${Date.now()}.jsonc`);
  writeFileSync(file, configText(fx.config({ size: SIZE, reconcileInterval: '2s', web: { ...WEB, ...web } })));
  return file;
}

async function allInService(): Promise<GroupStatus> {
  await waitForConvergence(fx.client, ref, { timeoutMs: 120_000, size: SIZE, pollMs: 300 });
  return eventually(`${SIZE} in service`, async () => {
    const s = await groupStatus(fx.client, ref);
    return s.total === SIZE && s.inService === SIZE ? s : undefined;
  }, 60_000);
}

/**
 * The rotation's order, from the fault layer's log of the calls EC2 answered: replayed call by call, EC2 never
 * holds more than `most` (each launch adds at most its MaxCount, each termination removes its ids); the k-th
 * drifted member terminated goes only after the k-th replacement was launched (create before destroy, one
 * replacement each); and they go in their launch order (oldest first: the group's creation order, seq).
 */
function expectCreateBeforeDestroyOldestFirst(calls: readonly CallRecord[], drifted: readonly Member[], most: number): void {
  const ec2Ids = new Set(drifted.map((m) => m.ec2InstanceId));
  let held = drifted.length;
  let heldMost = held;
  let launches = 0;
  const terminated: { ec2InstanceId: string; afterLaunches: number }[] = [];
  for (const c of calls) {
    if (c.command === 'RunInstances') {
      launches++;
      held += Number(c.input.MaxCount ?? 1);
    }
    if (c.command !== 'TerminateInstances') continue;
    for (const id of (c.input.InstanceIds as string[] | undefined) ?? []) {
      // A repeated termination (a retried activity) removes nothing more.
      if (!ec2Ids.has(id) || terminated.some((t) => t.ec2InstanceId === id)) continue;
      held--;
      terminated.push({ ec2InstanceId: id, afterLaunches: launches });
    }
    heldMost = Math.max(heldMost, held);
  }
  heldMost = Math.max(heldMost, held);
  expect(heldMost).toBeLessThanOrEqual(most);
  expect(terminated).toHaveLength(drifted.length);
  for (const [k, t] of terminated.entries()) expect(t.afterLaunches).toBeGreaterThanOrEqual(k + 1);
  const oldestFirst = [...drifted].sort((a, b) => a.seq - b.seq).map((m) => m.ec2InstanceId);
  expect(terminated.map((t) => t.ec2InstanceId)).toEqual(oldestFirst);
}

/**
 * `group status --wait`'s progress off a terminal: one line per change of the counts, each the same rotation
 * (`<group> rotating: done/total · counts`), done never going back, the rotation seen part-way, and the last line
 * the group done, serving its size.
 */
function expectRotationProgress(stdout: string): void {
  const shape = /^default\/web rotating: (\d+)\/(\d+) · desired (\d+), running (\d+) \(in service (\d+)\), pending (\d+), draining (\d+)$/;
  const lines = stdout.split('\n').filter((l) => l.startsWith('default/web rotating:'));
  expect(lines.filter((l) => !shape.test(l))).toEqual([]);
  const steps = lines.map((l) => (shape.exec(l) as RegExpExecArray).slice(1).map(Number));
  expect(steps.length).toBeGreaterThanOrEqual(2);
  const total = steps[0]?.[1] as number;
  expect(total).toBeGreaterThanOrEqual(SIZE - 1);
  expect(steps.every((s) => s[1] === total && s[2] === SIZE)).toBe(true);
  expect(steps.every((s, i) => i === 0 || (s[0] as number) >= (steps[i - 1]?.[0] as number))).toBe(true);
  expect(steps.some((s) => (s[0] as number) > 0 && (s[0] as number) < total)).toBe(true);
  expect(lines.filter((l, i) => l === lines[i - 1])).toEqual([]);
  expect(lines.at(-1)).toBe(`default/web rotating: ${total}/${total} · desired ${SIZE}, running ${SIZE} (in service ${SIZE}), pending 0, draining 0`);
  // After the progress, the report of the group it waited for.
  expect(stdout.slice(stdout.lastIndexOf('default/web rotating:'))).toMatch(new RegExp(`\\n\\s*desired ${SIZE} · running ${SIZE} \\(in service ${SIZE}\\) · pending 0 · draining 0\\n`));
  expect(stdout).not.toContain('drifted:');
}

test('a changed instance type rotates the whole group, never over size + surge in EC2; plan says so first', async () => {
  const before = await allInService();
  const planned = await runCli('plan', '-f', configFile({ instance_type: 'm7g.xlarge' }), '--bucket', fx.bucket, '--json');
  expect(planned.stderr).toBe('');
  expect(planned.code).toBe(2);
  expect(JSON.parse(planned.stdout).groups.rotating).toEqual([{ group: 'default/web', fields: ['instance_type'], members: SIZE, counted: true }]);

  let sampling = true;
  let mostSampled = 0;
  const sampler = (async () => {
    while (sampling) {
      mostSampled = Math.max(mostSampled, (await shardInstances(fx.aws.ec2, shard, ALIVE_STATES)).length);
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  const mark = fx.faults.calls.length;
  const reasons = new Set<string>();
  try {
    await fx.apply({ size: SIZE, reconcileInterval: '2s', web: { ...WEB, instance_type: 'm7g.xlarge' } });
    await eventually('the group sees its members drifted', async () => {
      const s = await groupStatus(fx.client, ref);
      for (const m of s.members) if (m.replacing) reasons.add(m.replacing.reason);
      return s.members.some((m) => m.replacing?.reason === 'drift') ? s : undefined;
    }, 30_000);
    // `group status --wait` follows the rotation to its end, polling the group's counts, never its members:
    // every status the CLI asked for (through its own client, not this file's) is counts-only.
    const asked: (StatusPage | 'every member')[] = [];
    let membersFetched = 0;
    const { groupStatus: counted, groupStatusWithMembers: paged } = status;
    const byCli = (client: unknown) => client !== fx.client;
    const countSpy = jest.spyOn(status, 'groupStatus').mockImplementation(async (client, r, page) => {
      const s = await counted(client, r, page);
      if (byCli(client)) {
        asked.push(page ?? {});
        membersFetched += s.members.length;
      }
      return s;
    });
    const pagedSpy = jest.spyOn(status, 'groupStatusWithMembers').mockImplementation(async (client, r, filter) => {
      const s = await paged(client, r, filter);
      if (byCli(client)) {
        asked.push('every member');
        membersFetched += s.members.length;
      }
      return s;
    });
    // As text, off a terminal (runCli captures it), so the progress lines are printed too.
    const rotated = await runCli('group', 'status', 'default/web', '--shard', shard, '--bucket', fx.bucket, '--wait', '--timeout', '240s').finally(() => {
      countSpy.mockRestore();
      pagedSpy.mockRestore();
    });
    expect(rotated.stderr).toBe('');
    expect(rotated.code).toBe(0);
    // It polled (once a second through a rotation of several members), and no answer carried a member.
    expect(asked.length).toBeGreaterThanOrEqual(5);
    expect(asked.filter((a) => a === 'every member' || a.limit !== 0)).toEqual([]);
    expect(membersFetched).toBe(0);
    expectRotationProgress(rotated.stdout);
    const done = await runCli('group', 'status', 'default/web', '--shard', shard, '--bucket', fx.bucket, '--json');
    expect(JSON.parse(done.stdout).live).toMatchObject({ drifted: 0, replacing: {}, inService: SIZE, total: SIZE });
    await eventually('every member replaced by an m7g.xlarge in service', async () => {
      const s = await groupStatus(fx.client, ref);
      for (const m of s.members) if (m.replacing) reasons.add(m.replacing.reason);
      const fresh = s.members.filter((m) => !before.members.some((b) => b.instanceId === m.instanceId));
      const running = await shardInstances(fx.aws.ec2, shard, ALIVE_STATES);
      return s.total === SIZE && fresh.length === SIZE && fresh.every((m) => m.phase === 'in-service') && running.length === SIZE && running.every((i) => i.InstanceType === 'm7g.xlarge') ? s : undefined;
    }, 240_000);
  } finally {
    sampling = false;
    await sampler;
  }
  const calls = fx.faults.calls.slice(mark).filter((c) => c.outcome === 'ok');
  expect(calls.filter((c) => c.command === 'RunInstances')).toHaveLength(SIZE);
  expect(calls.filter((c) => c.command === 'RunInstances').every((c) => c.input.InstanceType === 'm7g.xlarge')).toBe(true);
  // Default max_surge 1: never more than size + 1, and the surge was used (create before destroy).
  expect(mostSampled).toBeLessThanOrEqual(SIZE + 1);
  expect(mostSampled).toBeGreaterThanOrEqual(SIZE);
  expectCreateBeforeDestroyOldestFirst(calls, before.members, SIZE + 1);
  expect(reasons).toEqual(new Set(['drift']));

  const keys = await listKeys(fx.aws.s3, fx.bucket, `shard/${shard}/audit/`);
  const terminations = (await Promise.all(keys.filter((k) => k.includes('.instance.terminate.')).map((k) => readJson<AuditEntry>(fx.aws.s3, fx.bucket, k)))).filter((e) =>
    before.members.some((m) => e.instanceIds?.includes(m.instanceId)),
  );
  expect(terminations).toHaveLength(SIZE);
  for (const t of terminations) expect(t.details).toMatchObject({ reason: 'drift', detail: 'instance_type changed' });

  // The group's run with drift rotation and instance records, replayed by replay.test.ts from now on.
  recordHistory(groupWorkflowId(shard, 'default', 'web'), 'group-drift-rotation');

  // Applied: the same file plans no change.
  const again = await runCli('plan', '-f', configFile({ instance_type: 'm7g.xlarge' }), '--bucket', fx.bucket);
  expect(again.code).toBe(0);
  expect(again.stdout).toContain('no changes');
  await fx.expectEmulatorMatchesGroups();
});

test('changed vars rotate nothing (they are pushed, not rotated), and plan says so', async () => {
  const before = await allInService();
  const file = configFile({ instance_type: 'm7g.xlarge', vars: { Environment: 'staging' } });
  const planned = await runCli('plan', '-f', file, '--bucket', fx.bucket);
  expect(planned.code).toBe(2);
  expect(planned.stdout).toContain('~ group default/web: vars pushed to running instances (nothing rotates)');
  expect(planned.stdout).not.toContain('rotate (');

  const mark = fx.faults.calls.length;
  const applied = await runCli('config', 'apply', '-f', file, '--bucket', fx.bucket, '--yes', '--json');
  expect(applied.stderr).toBe('');
  expect(applied.code).toBe(0);
  expect(JSON.parse(applied.stdout).plan.groups.pushed).toEqual([{ group: 'default/web', fields: ['vars'] }]);
  // Several reconcile passes (2 s each) later, nothing was launched or terminated, and no member drifted.
  await new Promise((r) => setTimeout(r, 10_000));
  const calls = fx.faults.calls.slice(mark);
  expect(calls.filter((c) => c.command === 'RunInstances' || c.command === 'TerminateInstances')).toEqual([]);
  const after = await groupStatus(fx.client, ref);
  expect(after.members.map((m) => m.instanceId).sort()).toEqual(before.members.map((m) => m.instanceId).sort());
  expect(after.members.every((m) => m.drift === undefined && m.replacing === undefined)).toBe(true);
});
