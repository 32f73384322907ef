import type { Member, Phase } from '../../../common/types';
import { resolveBudget, type ReplacementBudget } from '../../../workflows/decisions/budget';
import { decideReconcile, type ReconcileDecision } from '../../../workflows/decisions/reconcile';

const member = (seq: number, phase: Phase = 'in-service', extra: Partial<Member> = {}): Member => ({ instanceId: `web-${seq}`, phase, seq, ...extra });
const fleet = (n: number, extra: Partial<Member> = {}, from = 1) => Array.from({ length: n }, (_, i) => member(from + i, 'in-service', extra));

function decide(desired: number, members: Member[], budget: Partial<ReplacementBudget> = {}): ReconcileDecision {
  const nextSeq = Math.max(0, ...members.map((m) => m.seq)) + 1;
  return decideReconcile({ desired, members, now: 0, nextSeq, budget: { ...resolveBudget(desired), ...budget }, takeOverOnce: true });
}

/** Carries a decision out the way the group does: flags recorded, removals marked leaving. */
function apply(members: Member[], d: ReconcileDecision): Member[] {
  const flags = new Map(d.flag.map((f) => [f.instanceId, f.replacing]));
  const removed = new Set(d.remove.map((r) => r.instanceId));
  return members.map((m) => ({
    ...m,
    ...(flags.has(m.instanceId) ? { replacing: flags.get(m.instanceId) } : {}),
    ...(d.unflag.includes(m.instanceId) ? { replacing: undefined } : {}),
    ...(removed.has(m.instanceId) ? { leaving: true, phase: 'draining' as const } : {}),
  }));
}

/** Marks the replacements that took over, as the group does. */
function applyTakeOvers(members: Member[], d: ReconcileDecision): Member[] {
  const used = new Set(d.tookOver);
  return members.map((m) => (used.has(m.instanceId) ? { ...m, tookOver: true } : m));
}

describe('resolveBudget', () => {
  test('counts and percentages: surge rounds up, unavailability down; Nstance defaults', () => {
    expect(resolveBudget(2000)).toMatchObject({ surge: 1, unavailable: 0, rollingBatch: 1, healthLimit: 400 });
    expect(resolveBudget(2000, { percent: 10 }, { percent: 5 })).toMatchObject({ surge: 200, unavailable: 100, rollingBatch: 300 });
    expect(resolveBudget(3, { percent: 10 }, { percent: 10 })).toMatchObject({ surge: 1, unavailable: 0 });
    expect(resolveBudget(3)).toMatchObject({ healthLimit: 1 });
  });

  test('no surge and no unavailability would never replace anything: one surge slot instead', () => {
    expect(resolveBudget(5, { count: 0 }, { percent: 10 })).toMatchObject({ surge: 1, unavailable: 0 });
    expect(resolveBudget(20, { count: 0 }, { percent: 10 })).toMatchObject({ surge: 0, unavailable: 2 });
  });
});

describe('max_surge: replacements in parallel, EC2 never above size + surge', () => {
  test('a forced-expiry cohort of 2,000 with a 10% surge creates 200 at once, not one', () => {
    const cohort = fleet(2000, { expiry: 'forced' });
    const d = decide(2000, cohort, resolveBudget(2000, { percent: 10 }));
    expect(d.flag).toHaveLength(2000);
    expect(d.create).toBe(200);
    expect(d.remove).toEqual([]);
  });

  test('as replacements serve, as many leave; what drains still holds its slot', () => {
    const budget = { surge: 2 };
    let members = fleet(4, { expiry: 'forced' });
    let d = decide(4, members, budget);
    expect(d.create).toBe(2);
    members = apply(members, d);
    members.push(member(5), member(6));
    d = decide(4, members, budget);
    expect(d.remove.map((r) => r.instanceId).sort()).toEqual(['web-1', 'web-2']);
    members = apply(members, d);
    // Two draining + two flagged + two new = 6 = size + surge: nothing more until the drained are gone.
    expect(decide(4, members, budget).create).toBe(0);
    expect(decide(4, members.filter((m) => !m.leaving), budget).create).toBe(2);
  });

  test('max_unavailable lets members go before their replacements serve, but never below size - unavailable', () => {
    const budget = { surge: 0, unavailable: 1 };
    const d = decide(3, fleet(3, { expiry: 'forced' }), budget);
    expect(d.create).toBe(0);
    expect(d.remove).toHaveLength(1);
  });
});

describe('a replacement takes over from one member only, across passes', () => {
  test('with no unavailability allowed, members in service never drop below size while the last replacement boots', () => {
    // The bench's 60 at 10%: six flagged, five replacements serving, the sixth still booting.
    const budget = resolveBudget(60, { percent: 10 });
    let members = fleet(60, { expiry: 'eligible' });
    let d = decide(60, members, budget);
    expect(d.flag).toHaveLength(6);
    members = apply(members, d);
    members.push(...fleet(5, {}, 61), member(66, 'registered'));
    d = decide(60, members, budget);
    expect(d.remove).toHaveLength(5);
    expect(d.tookOver).toHaveLength(5);
    members = applyTakeOvers(apply(members, d), d);
    // The five left (draining, then gone): the five replacements that took their places must not count for the sixth.
    const staying = members.filter((m) => !m.leaving);
    const serving = (ms: Member[]) => ms.filter((m) => m.phase === 'in-service' && !m.leaving).length;
    expect(serving(staying)).toBe(60);
    d = decide(60, staying, budget);
    expect(d.remove).toEqual([]);
    // Once the sixth serves, the last original goes.
    d = decide(60, staying.map((m) => (m.seq === 66 ? { ...m, phase: 'in-service' as const } : m)), budget);
    expect(d.remove.map((r) => r.instanceId)).toHaveLength(1);
  });
});

describe('a member without a serving replacement goes only on what serves once the others are swapped', () => {
  test('flagged in two rolls: the later-flagged oldest member does not go on the strength of the earlier roll\'s replacements', () => {
    const budget = resolveBudget(60, { percent: 10 });
    // web-1 was flagged after web-2..6 (its replacements count from seq 66, still booting); 61..65 serve.
    const members = [
      member(1, 'in-service', { replacing: { reason: 'expired-eligible', sinceSeq: 66 } }),
      ...fleet(5, { replacing: { reason: 'expired-eligible', sinceSeq: 61 } }, 2),
      ...fleet(54, {}, 7),
      ...fleet(5, {}, 61),
      member(66, 'registered'),
    ];
    const d = decide(60, members, budget);
    expect(d.remove.map((r) => r.instanceId).sort()).toEqual(['web-2', 'web-3', 'web-4', 'web-5', 'web-6']);
    const serving = apply(members, d).filter((m) => m.phase === 'in-service' && !m.leaving).length;
    expect(serving).toBe(60);
  });
});

describe('health alone replaces only a share of the group at once', () => {
  test('a fleet-wide blip (every agent silent) flags at most 20%, and creates only the surge', () => {
    const all = fleet(10, { health: 'unhealthy' });
    const d = decide(10, all);
    expect(d.flag).toHaveLength(2);
    expect(d.create).toBe(1);
    expect(d.remove).toEqual([]);
  });

  test('the others wait their turn while the flagged ones are replaced', () => {
    let members = apply(fleet(10, { health: 'unhealthy' }), decide(10, fleet(10, { health: 'unhealthy' })));
    expect(decide(10, members).flag).toEqual([]);
    // One flagged member recovers: a slot for the next unhealthy one.
    members = members.map((m) => (m.instanceId === 'web-1' ? { ...m, health: 'healthy' } : m));
    const d = decide(10, members);
    expect(d.unflag).toEqual(['web-1']);
    expect(d.flag.map((f) => f.instanceId)).toEqual(['web-3']);
  });

  test('a termination notice is never held back by the health share', () => {
    const members = [...fleet(8, { health: 'unhealthy' }), member(9, 'in-service', { health: 'termination-notice' }), member(10)];
    expect(decide(10, members).flag.map((f) => f.replacing.reason)).toContain('termination-notice');
  });
});

describe('a recovered member is un-flagged', () => {
  test('unhealthy, flagged, then healthy before it was removed: no longer replaced, and its spare launch is cancelled', () => {
    let members = [member(1, 'in-service', { health: 'unhealthy' }), member(2)];
    let d = decide(2, members);
    expect(d.create).toBe(1);
    members = [...apply(members, d), member(3, 'running')];
    members = members.map((m) => (m.instanceId === 'web-1' ? { ...m, health: 'healthy' } : m));
    d = decide(2, members);
    expect(d.unflag).toEqual(['web-1']);
    // The replacement that does not serve yet is the one that goes, not the member that recovered.
    expect(d.remove).toEqual([{ instanceId: 'web-3', reason: 'scale-down', drain: true }]);
  });

  test('a spot notice is never un-flagged, whatever health says', () => {
    const noticed = { ...member(1, 'in-service', { health: 'healthy', noticeDeadline: new Date(10_000_000).toISOString() }), replacing: { reason: 'termination-notice' as const, sinceSeq: 3 } };
    expect(decide(2, [noticed, member(2)]).unflag).toEqual([]);
  });
});

describe('eligible expiry rolls within the budget', () => {
  test('a rolling batch at a time, oldest first; the next ones as soon as one is done', () => {
    const budget = { rollingBatch: 3, surge: 3 };
    let members = fleet(10, { expiry: 'eligible' });
    let d = decide(10, members, budget);
    expect(d.flag.map((f) => f.instanceId)).toEqual(['web-1', 'web-2', 'web-3']);
    expect(d.create).toBe(3);
    members = [...apply(members, d), member(11), member(12), member(13)];
    d = decide(10, members, budget);
    expect(d.remove.map((r) => r.instanceId)).toEqual(['web-1', 'web-2', 'web-3']);
    members = apply(members, d);
    // All three still draining: the batch is full.
    expect(decide(10, members, budget).flag).toEqual([]);
    // One gone: one more starts.
    expect(decide(10, members.filter((m) => m.instanceId !== 'web-1'), budget).flag.map((f) => f.instanceId)).toEqual(['web-4']);
  });
});
