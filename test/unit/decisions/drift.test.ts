import { launchFingerprint } from '../../../common/launch-fingerprint';
import type { LaunchSpec, Member } from '../../../common/types';
import { resolveBudget } from '../../../workflows/decisions/budget';
import { describeDrift, driftOf, pruneVersions, versionFor, type CurrentLaunch, type LaunchVersion } from '../../../workflows/decisions/drift';
import { decideReconcile } from '../../../workflows/decisions/reconcile';
import { packMember, unpackMember } from '../../../workflows/group-carry';
import { applyUpdate, carryGroupState, finishRebuild, initialGroupState, restoreGroupState } from '../../../workflows/group-state';
import { rotationDone, rotationLeft, rotationOf, statusOf } from '../../../workflows/group-status';

const launch = (extra: Partial<LaunchSpec> = {}): LaunchSpec => ({
  kind: 'web',
  arch: 'arm64',
  instanceType: 'm7g.large',
  subnetPool: 'web',
  subnetIds: ['subnet-a', 'subnet-b'],
  args: { SecurityGroupIds: ['sg-1'], MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 1 } },
  vars: { Env: 'prod' },
  userdata: '#!/bin/sh\necho {{ .Vars.Env }} {{ .Nonce }}\n',
  images: {},
  registrationAddress: '10.0.0.10:8443',
  ...extra,
});
const current = (spec: LaunchSpec, images: Record<string, string> = { al2023: 'ami-1' }): CurrentLaunch => ({ fingerprint: launchFingerprint(spec), images });

describe('launch fingerprint', () => {
  test('each hashed field is a short digest (8 bytes, base64url)', () => {
    for (const digest of Object.values(launchFingerprint(launch()).fields)) expect(digest).toMatch(/^[A-Za-z0-9_-]{11}$/);
  });

  test('vars, subnets added to the pool and the order args were written in change nothing', () => {
    const base = launchFingerprint(launch());
    expect(launchFingerprint(launch({ vars: { Env: 'staging', New: 'x' } }))).toEqual(base);
    expect(launchFingerprint(launch({ subnetIds: ['subnet-a', 'subnet-b', 'subnet-c'] }))).toEqual(base);
    expect(launchFingerprint(launch({ args: { MetadataOptions: { HttpPutResponseHopLimit: 1, HttpTokens: 'required' }, SecurityGroupIds: ['sg-1'] } }))).toEqual(base);
  });

  test.each([
    ['instance_type', { instanceType: 'm7g.xlarge' }],
    ['args', { args: { SecurityGroupIds: ['sg-2'] } }],
    ['subnet_pool', { subnetPool: 'other' }],
    ['userdata', { userdata: '#!/bin/sh\necho changed\n' }],
    ['userdata', { registrationAddress: '10.0.0.11:8443' }],
    ['kind', { kind: 'api' }],
    ['arch', { arch: 'amd64' as const }],
  ])('a change to %s changes that field alone', (field, change) => {
    const base = launchFingerprint(launch()).fields;
    const changed = launchFingerprint(launch(change)).fields;
    const differing = Object.keys(base).filter((k) => base[k as keyof typeof base] !== changed[k as keyof typeof changed]);
    expect(differing).toEqual([field]);
  });
});

describe('drift state stays compact at 5,000 members', () => {
  test('the launch version adds a few bytes per member, and one table entry for all of them', () => {
    // As in-service members are: launched, addressed, healthy.
    const members: Member[] = Array.from({ length: 5000 }, (_, i) => ({
      instanceId: `web-${String(i).padStart(12, '0')}`,
      seq: i + 1,
      phase: 'in-service',
      ec2InstanceId: `i-${String(i).padStart(17, '0')}`,
      launchedAt: '2026-12-01T10:00:00.000Z',
      privateIp: '10.0.12.34',
      health: 'healthy',
    }));
    const carried = (withLaunch: boolean) => {
      const state = initialGroupState();
      finishRebuild(state, withLaunch ? members.map((m) => ({ ...m, launch: 1 })) : members, 0);
      if (withLaunch) state.launches = versionFor([], current(launch())).table;
      return JSON.stringify(carryGroupState(state)).length;
    };
    const added = carried(true) - carried(false);
    // The version rides in the flags (null becomes 16): at most a couple of bytes a member, plus the one table entry.
    expect(added).toBeLessThan(5000 * 2 + 300);
    expect(versionFor([], current(launch())).table).toHaveLength(1);
  });
});

describe('drift table', () => {
  test('members sharing a launch share one table entry, and unused entries are pruned', () => {
    let table: LaunchVersion[] = [];
    const v1 = versionFor(table, current(launch()));
    table = v1.table;
    expect(versionFor(table, current(launch({ vars: { Env: 'x' } })))).toEqual({ table, id: v1.id });
    const v2 = versionFor(table, current(launch({ instanceType: 'm7g.xlarge' })));
    expect(v2.table).toHaveLength(2);
    const members: Member[] = Array.from({ length: 5000 }, (_, i) => ({ instanceId: `web-${i}`, seq: i, phase: 'in-service', launch: v2.id }));
    expect(pruneVersions(v2.table, members).map((v) => v.id)).toEqual([v2.id]);
  });

  test('which fields drifted, per member; a new image alone only where the group rotates on it', () => {
    const v1 = versionFor([], current(launch(), { al2023: 'ami-1' }));
    const members: Member[] = [
      { instanceId: 'web-1', seq: 1, phase: 'in-service', launch: v1.id },
      { instanceId: 'web-2', seq: 2, phase: 'in-service' },
    ];
    const newType = driftOf(members, v1.table, current(launch({ instanceType: 'm7g.xlarge' }), { al2023: 'ami-1' }), false);
    expect([...newType.drifted]).toEqual([['web-1', ['instance_type']]]);
    expect(newType.unversioned).toEqual(['web-2']);
    const newImage = current(launch(), { al2023: 'ami-2' });
    expect(driftOf(members, v1.table, newImage, false).drifted.size).toBe(0);
    expect([...driftOf(members, v1.table, newImage, true).drifted]).toEqual([['web-1', ['image']]]);
    expect(describeDrift(['instance_type', 'args'])).toBe('instance_type, args changed');
  });

  test('a fallback type is not drift: a member EC2 launched as the next type of the list is current; a new preferred type is drift', () => {
    const spec = launch({ instanceType: 'm7g.large', instanceTypes: ['m7g.large', 'm6g.large'] });
    const state = initialGroupState();
    finishRebuild(state, [{ instanceId: 'web-1', seq: 1, phase: 'provisioning' }], 0);
    const v1 = versionFor([], current(spec));
    state.launches = v1.table;
    state.members['web-1'].launch = v1.id;
    // The instance workflow reports what EC2 launched: the fallback, m7g.large having had no capacity.
    applyUpdate(state, { instanceId: 'web-1', phase: 'in-service', ec2InstanceId: 'i-1', instanceType: 'm6g.large' }, 0);
    const members = Object.values(state.members);
    expect(members).toEqual([expect.objectContaining({ instanceType: 'm6g.large', launch: v1.id })]);
    expect(driftOf(members, state.launches, current(spec), false).drifted.size).toBe(0);
    // The spec's preferred type changing is drift, even to the type the member happens to run.
    const preferFallback = launch({ instanceType: 'm6g.large', instanceTypes: ['m6g.large', 'm7g.large'] });
    expect([...driftOf(members, state.launches, current(preferFallback), false).drifted]).toEqual([['web-1', ['instance_type']]]);
  });

  test('the launch version crosses continue-as-new, packed; the table too', () => {
    const m: Member = { instanceId: 'web-1', seq: 3, phase: 'in-service', launch: 7 };
    expect(unpackMember(packMember(m))).toEqual(m);
    const state = initialGroupState();
    finishRebuild(state, [m], 0);
    state.launches = versionFor([], current(launch())).table;
    const restored = restoreGroupState(JSON.parse(JSON.stringify(carryGroupState(state))));
    expect(restored.launches).toEqual(state.launches);
    expect(restored.members['web-1'].launch).toBe(7);
  });
});

/**
 * A whole group rotated by the pure decisions, as the group workflow applies them: each step, flags are
 * recorded, creations join (booting one step, serving the next) and removals leave (draining one step,
 * gone the next). EC2's count (everything not gone) is sampled at every step.
 */
function rotate(size: number, maxSurge: number, driftedOf: (m: Member) => boolean) {
  const budget = resolveBudget(size, { count: maxSurge });
  let nextSeq = 1;
  let members: Member[] = Array.from({ length: size }, () => ({ instanceId: `old-${nextSeq}`, seq: nextSeq++, phase: 'in-service' as const, launch: 1 }));
  let maxInEc2 = members.length;
  const reasons = new Map<string, string>();
  for (let step = 0; step < 50 * size; step++) {
    // What was booting now serves; what was draining is gone.
    members = members.filter((m) => m.phase !== 'terminating').map((m) => (m.phase === 'provisioning' ? { ...m, phase: 'in-service' } : m));
    const drifted = new Set(members.filter((m) => driftedOf(m)).map((m) => m.instanceId));
    const d = decideReconcile({ desired: size, members, now: 0, nextSeq, budget, drifted });
    for (const f of d.flag) {
      const m = members.find((x) => x.instanceId === f.instanceId);
      if (m) m.replacing = f.replacing;
    }
    for (const r of d.remove) {
      const m = members.find((x) => x.instanceId === r.instanceId);
      if (m) Object.assign(m, { leaving: true, phase: 'terminating' });
      reasons.set(r.instanceId, r.reason);
    }
    for (let i = 0; i < d.create; i++) members.push({ instanceId: `new-${nextSeq}`, seq: nextSeq++, phase: 'provisioning', launch: 2 });
    maxInEc2 = Math.max(maxInEc2, members.length);
    if (d.flag.length + d.remove.length + d.create === 0 && members.every((m) => m.phase === 'in-service')) break;
  }
  return { members, maxInEc2, reasons };
}

describe('drift rotation through the replacement bounds', () => {
  test.each([
    [10, 1],
    [10, 3],
    [7, 2],
  ])('a changed spec rotates the whole group of %i (max_surge %i), never over size + surge, for drift', (size, surge) => {
    const { members, maxInEc2, reasons } = rotate(size, surge, (m) => m.launch === 1);
    expect(members).toHaveLength(size);
    expect(members.every((m) => m.launch === 2 && m.phase === 'in-service')).toBe(true);
    expect(maxInEc2).toBeLessThanOrEqual(size + surge);
    // It used the surge it was given: rolling one at a time would never reach it.
    expect(maxInEc2).toBe(size + surge);
    expect([...reasons.values()].every((r) => r === 'drift')).toBe(true);
    expect(reasons.size).toBe(size);
  });

  test('nothing drifted (vars alone changed): nothing is flagged, created or removed', () => {
    const { members, reasons, maxInEc2 } = rotate(10, 1, () => false);
    expect(members.every((m) => m.launch === 1)).toBe(true);
    expect(reasons.size).toBe(0);
    expect(maxInEc2).toBe(10);
  });

  test('a drift replacement not removed yet is called off when the spec comes back', () => {
    const members: Member[] = [
      { instanceId: 'web-1', seq: 1, phase: 'in-service', replacing: { reason: 'drift', sinceSeq: 3 } },
      { instanceId: 'web-2', seq: 2, phase: 'in-service' },
    ];
    const budget = resolveBudget(2);
    expect(decideReconcile({ desired: 2, members, now: 0, nextSeq: 3, budget, drifted: new Set() }).unflag).toEqual(['web-1']);
    // Runs from before drift rotation (no drift view) leave it as it is.
    expect(decideReconcile({ desired: 2, members, now: 0, nextSeq: 3, budget }).unflag).toEqual([]);
    expect(decideReconcile({ desired: 2, members, now: 0, nextSeq: 3, budget, drifted: new Set(['web-1']) }).unflag).toEqual([]);
  });

  test('scale-down removes drifted members before current ones, even the newest', () => {
    const members: Member[] = [1, 2, 3].map((seq) => ({ instanceId: `web-${seq}`, seq, phase: 'in-service' }));
    const d = decideReconcile({ desired: 2, members, now: 0, nextSeq: 4, budget: resolveBudget(2), drifted: new Set(['web-3']) });
    expect(d.remove.map((r) => r.instanceId)).toEqual(['web-3']);
    // With a rotation already using the surge, scale-down still picks the drifted one.
    const rolling = [...members, { instanceId: 'web-4', seq: 4, phase: 'provisioning' as const }];
    rolling[0] = { ...rolling[0], replacing: { reason: 'drift', sinceSeq: 4 } };
    const down = decideReconcile({ desired: 1, members: rolling, now: 0, nextSeq: 5, budget: resolveBudget(1), drifted: new Set(['web-1', 'web-3']) });
    expect(down.remove.map((r) => r.instanceId).sort()).toEqual(['web-1', 'web-3', 'web-4']);
  });
});

describe('rotation counts in the status query', () => {
  test('are counted over every member, in a counts-only answer too, for `group status --wait` to poll', () => {
    const members: Member[] = [
      { instanceId: 'web-1', seq: 1, phase: 'in-service', launch: 1 },
      { instanceId: 'web-2', seq: 2, phase: 'in-service', launch: 1, leaving: true, replacing: { reason: 'drift', sinceSeq: 4 } },
      { instanceId: 'web-3', seq: 3, phase: 'in-service', launch: 2 },
      { instanceId: 'web-4', seq: 4, phase: 'running', launch: 3 },
      { instanceId: 'web-5', seq: 5, phase: 'in-service', replacing: { reason: 'expired-eligible', sinceSeq: 6 } },
    ];
    const drift: Record<number, ('instance_type' | 'image')[]> = { 1: ['instance_type'], 2: ['image', 'instance_type'] };
    const view = { members, desired: 4, configured: true, driftOf: (m: Member) => (m.launch === undefined ? undefined : drift[m.launch]) };
    const counts = statusOf({ shard: 's', tenant: 'default', group: 'web' }, view, 0, { limit: 0 });
    expect(counts.members).toEqual([]);
    // web-2 is leaving (its replacement is on the way): replaced, no longer drifted.
    expect(counts.rotation).toEqual({ drifted: 2, driftFields: ['image', 'instance_type'], replacing: { drift: 1, 'expired-eligible': 1 } });
    expect(rotationLeft(counts.rotation!)).toBe(4);
    // A client holding paged members counts the same from each member's `drift`.
    const paged = statusOf({ shard: 's', tenant: 'default', group: 'web' }, view, 0, { limit: 10 }).members;
    expect(rotationOf(paged)).toEqual(counts.rotation);
  });

  test('count a drifted member being replaced once, so a rotation left never grows as the next member is flagged', () => {
    const drift = (m: Member) => (m.launch === 1 ? (['instance_type'] as const).slice() : undefined);
    const at = (members: Member[]) => rotationLeft(rotationOf(members, drift));
    const a = { instanceId: 'web-1', seq: 1, phase: 'in-service' as const, launch: 1 };
    const b = { instanceId: 'web-2', seq: 2, phase: 'in-service' as const, launch: 1 };
    const flagged = { reason: 'drift' as const, sinceSeq: 3 };
    const steps = [
      at([{ ...a, replacing: flagged }, b]),
      at([{ ...a, replacing: flagged }, b, { instanceId: 'web-3', seq: 3, phase: 'in-service', launch: 2 }]),
      at([{ ...a, replacing: flagged, leaving: true }, b, { instanceId: 'web-3', seq: 3, phase: 'in-service', launch: 2 }]),
      at([b, { instanceId: 'web-3', seq: 3, phase: 'in-service', launch: 2 }]),
      at([{ ...b, replacing: { reason: 'drift', sinceSeq: 4 } }, { instanceId: 'web-3', seq: 3, phase: 'in-service', launch: 2 }]),
    ];
    expect(steps).toEqual([2, 2, 2, 1, 1]);
    expect(rotationOf([{ ...a, replacing: flagged }, b], drift)).toEqual({ drifted: 1, driftFields: ['instance_type'], replacing: { drift: 1 } });
  });

  test('are not done while the run has not judged drift (just continued as new), however settled the counts look', () => {
    // Between two replacements: two members replaced, two still drifted, none flagged, all four in service.
    const members: Member[] = [
      { instanceId: 'web-1', seq: 1, phase: 'in-service', launch: 1 },
      { instanceId: 'web-2', seq: 2, phase: 'in-service', launch: 1 },
      { instanceId: 'web-5', seq: 5, phase: 'in-service', launch: 2 },
      { instanceId: 'web-6', seq: 6, phase: 'in-service', launch: 2 },
    ];
    const ref = { shard: 's', tenant: 'default', group: 'web' };
    const unjudged = statusOf(ref, { members, desired: 4, configured: true, driftOf: () => undefined, driftJudged: false }, 0, { limit: 0 });
    expect(unjudged.rotation).toEqual({ drifted: 0, driftFields: [], replacing: {}, unjudged: true });
    expect(rotationDone({ ...unjudged, ...unjudged.rotation! })).toBe(false);
    const verdicts: Record<number, 'instance_type'[]> = { 1: ['instance_type'], 2: [] };
    const judged = statusOf(ref, { members, desired: 4, configured: true, driftOf: (m) => verdicts[m.launch!], driftJudged: true }, 0, { limit: 0 });
    expect(rotationDone({ ...judged, ...judged.rotation! })).toBe(false);
    const replaced = members.map((m): Member => ({ ...m, launch: 2 }));
    const done = statusOf(ref, { members: replaced, desired: 4, configured: true, driftOf: (m) => verdicts[m.launch!], driftJudged: true }, 0, { limit: 0 });
    expect(rotationDone({ ...done, ...done.rotation! })).toBe(true);
    // Judged and undrifted, but one short of size, or one over: not done either.
    expect(rotationDone({ ...done, ...done.rotation!, total: 3, inService: 3 })).toBe(false);
    expect(rotationDone({ ...done, ...done.rotation!, total: 5 })).toBe(false);
  });
});
