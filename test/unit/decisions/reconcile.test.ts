import type { Member, Phase } from '../../../common/types';
import { drainBudgetMs, mustDrainBy } from '../../../workflows/decisions/notice';
import { resolveBudget, type ReplacementBudget } from '../../../workflows/decisions/budget';
import { countMembers, creationBackoffMs, decideReconcile, newInstanceId, type Removal } from '../../../workflows/decisions/reconcile';

const member = (seq: number, phase: Phase = 'in-service', extra: Partial<Member> = {}): Member => ({
  instanceId: `web-${seq}`,
  phase,
  seq,
  createdAt: new Date(seq * 1000).toISOString(),
  ...extra,
});
const ids = (removals: Removal[]) => removals.map((r) => r.instanceId);

interface Extra {
  now?: number;
  backoffUntil?: number;
  drainTimeoutMs?: number;
  budget?: Partial<ReplacementBudget>;
  createLimit?: number;
}
/** The decision, with nextSeq after the members' highest (as the group workflow passes it) and the default budget. */
function decide(desired: number, members: Member[], extra: Extra = {}) {
  const nextSeq = Math.max(0, ...members.map((m) => m.seq)) + 1;
  const budget = { ...resolveBudget(desired), ...extra.budget };
  return decideReconcile({ desired, members, now: extra.now ?? 0, backoffUntil: extra.backoffUntil, nextSeq, drainTimeoutMs: extra.drainTimeoutMs, budget, createLimit: extra.createLimit });
}
/** The decision without its flags, for tests about creation and removal only. */
function act(desired: number, members: Member[], extra: Extra = {}) {
  const { create, remove, heldBack } = decide(desired, members, extra);
  return { create, remove, heldBack };
}
/** A member that the group already flagged for replacement (as recorded from an earlier decision); unhealthy ones still are. */
const flagged = (m: Member, reason: Removal['reason'], sinceSeq: number): Member => ({
  ...(reason === 'unhealthy' && m.health === undefined ? { ...m, health: 'unhealthy' as const } : m),
  replacing: { reason, sinceSeq },
});

describe('decideReconcile: size', () => {
  test('creates what is missing', () => {
    expect(act(3, [])).toEqual({ create: 3, remove: [], heldBack: false });
    expect(act(3, [member(1)]).create).toBe(2);
  });

  test('counts provisioning instances toward the size (no double creation while they boot)', () => {
    expect(act(2, [member(1, 'provisioning'), member(2, 'provisioning')]).create).toBe(0);
  });

  test('scales down oldest first, by creation order, draining', () => {
    const d = act(1, [member(5), member(2), member(9), member(7)]);
    expect(d.remove).toEqual([2, 5, 7].map((n) => ({ instanceId: `web-${n}`, reason: 'scale-down', drain: true })));
  });

  test('instances already leaving or gone do not count and are not chosen again', () => {
    const members = [member(1, 'running', { leaving: true }), member(2, 'terminating'), member(3, 'failed'), member(4)];
    expect(act(1, members)).toEqual({ create: 0, remove: [], heldBack: false });
    // Members still leaving run in EC2: size + surge (1) is already held until one is gone.
    expect(act(2, members).create).toBe(0);
    expect(act(2, members.slice(1)).create).toBe(1);
    expect(act(3, members, { budget: { surge: 2 } }).create).toBe(2);
  });

  test('scale to zero removes everything active', () => {
    expect(ids(act(0, [member(1), member(2, 'provisioning')]).remove)).toEqual(['web-2', 'web-1']);
  });

  test('scale down: a launch that does not serve yet goes before a member that serves', () => {
    expect(ids(act(2, [member(1), member(2), member(3, 'running'), member(4, 'provisioning')]).remove)).toEqual(['web-3', 'web-4']);
    expect(ids(act(2, [member(1), member(2), member(3), member(4, 'registered')]).remove)).toEqual(['web-4', 'web-1']);
  });

  test('creations are limited to one batch per decision, and it says there is more', () => {
    expect(decide(250, [], { createLimit: 100 })).toMatchObject({ create: 100, moreToCreate: true });
    expect(decide(250, [], { createLimit: 300 })).toMatchObject({ create: 250, moreToCreate: false });
  });

  test('holds creation back during a failure backoff, but still scales down', () => {
    expect(act(2, [], { now: 1000, backoffUntil: 5000 })).toEqual({ create: 0, remove: [], heldBack: true });
    expect(act(2, [], { now: 5000, backoffUntil: 5000 }).create).toBe(2);
    expect(ids(act(0, [member(1)], { now: 1000, backoffUntil: 5000 }).remove)).toEqual(['web-1']);
  });

  test('converged group: nothing to do', () => {
    expect(act(2, [member(1), member(2)])).toEqual({ create: 0, remove: [], heldBack: false });
  });
});

describe('decideReconcile: replacement', () => {
  test('a lost instance is terminated at once (no drain) and replaced in the same pass', () => {
    const d = act(2, [member(1, 'in-service', { lost: true }), member(2)]);
    expect(d.remove).toEqual([{ instanceId: 'web-1', reason: 'lost', drain: false }]);
    expect(d.create).toBe(1);
  });

  test('unhealthy: create-before-destroy, one over size, drain only once the replacement serves', () => {
    const sick = member(1, 'in-service', { health: 'unhealthy' });
    const first = act(2, [sick, member(2)]);
    expect(first).toEqual({ create: 1, remove: [], heldBack: false });
    const booting = act(2, [sick, member(2), member(3, 'running')]);
    expect(booting).toEqual({ create: 0, remove: [], heldBack: false });
    const ready = act(2, [sick, member(2), member(3)]);
    expect(ready.remove).toEqual([{ instanceId: 'web-1', reason: 'unhealthy', drain: true }]);
    expect(ready.create).toBe(0);
  });

  test('a termination notice or a replace request is handled the same way', () => {
    const notice = act(1, [member(1, 'in-service', { health: 'termination-notice' })]);
    expect(notice.create).toBe(1);
    const asked = act(1, [member(1, 'in-service', { replaceRequested: true }), member(2)]);
    expect(asked.remove).toEqual([{ instanceId: 'web-1', reason: 'replace-requested', drain: true }]);
  });

  test('eligible expiry: oldest first, one at a time, only while the group is calm', () => {
    const old1 = member(1, 'in-service', { expiry: 'eligible' });
    const old2 = member(2, 'in-service', { expiry: 'eligible' });
    expect(act(2, [old1, old2]).create).toBe(1);
    // Replacement ready: the oldest goes, the second waits its turn.
    const next = act(2, [old1, old2, member(3)]);
    expect(next.remove).toEqual([{ instanceId: 'web-1', reason: 'expired-eligible', drain: true }]);
    // Something draining or unhealthy: no opportunistic expiry.
    const draining = member(9, 'draining', { leaving: true });
    expect(act(2, [old1, old2, draining])).toEqual({ create: 0, remove: [], heldBack: false });
    const sick = member(4, 'in-service', { health: 'unhealthy' });
    const withSick = act(3, [old1, old2, sick]);
    expect(withSick.create).toBe(1); // only the sick one is being replaced
  });

  test('several members replaced with one surge slot: released one at a time as replacements serve', () => {
    const a = member(1, 'in-service', { expiry: 'forced' });
    const b = member(2, 'in-service', { expiry: 'forced' });
    expect(act(2, [a, b])).toEqual({ create: 1, remove: [], heldBack: false });
    const first = act(2, [a, b, member(3)]);
    expect(first.remove).toEqual([{ instanceId: 'web-1', reason: 'expired-forced', drain: true }]);
    // web-1 still drains in EC2: it holds the one surge slot until it is gone.
    const draining = act(2, [{ ...a, leaving: true }, b, member(3)]);
    expect(draining).toEqual({ create: 0, remove: [], heldBack: false });
    expect(act(2, [b, member(3)])).toEqual({ create: 1, remove: [], heldBack: false });
    const last = act(2, [b, member(3), member(4)]);
    expect(last.remove).toEqual([{ instanceId: 'web-2', reason: 'expired-forced', drain: true }]);
  });

  test('forced expiry is replaced regardless of the group being busy', () => {
    const forced = member(1, 'in-service', { expiry: 'forced' });
    const draining = member(9, 'draining', { leaving: true });
    const sick = member(2, 'in-service', { health: 'unhealthy' });
    // One over size at most, the draining member included: wait until it is gone.
    expect(act(2, [forced, sick, draining]).create).toBe(0);
    // A lost member (stopped or terminated in EC2) does not hold the slot.
    expect(act(2, [forced, sick, { ...draining, lost: true }]).create).toBe(1);
    expect(act(2, [forced, sick]).create).toBe(1);
    const ready = act(2, [forced, sick, member(3), member(4)]);
    expect(ids(ready.remove).sort()).toEqual(['web-1', 'web-2']);
  });
});

describe('decideReconcile: flags and replacements', () => {
  test('a new reason is flagged once, with the sequence from which replacements count', () => {
    const d = decide(2, [member(1, 'in-service', { health: 'unhealthy' }), member(2)]);
    expect(d.flag).toEqual([{ instanceId: 'web-1', replacing: { reason: 'unhealthy', sinceSeq: 3 } }]);
    expect(decide(2, [flagged(member(1), 'unhealthy', 3), member(2)]).flag).toEqual([]);
  });

  test('an older member that is not ready does not block a replacement that is', () => {
    // web-2 never registered (yet); web-1 is being replaced and its replacement web-3 serves.
    const members = [flagged(member(1), 'expired-forced', 3), member(2, 'running'), member(3)];
    expect(act(2, members).remove).toEqual([{ instanceId: 'web-1', reason: 'expired-forced', drain: true }]);
  });

  test('a member that was already there is not mistaken for a replacement', () => {
    const members = [flagged(member(1), 'unhealthy', 4), member(2), member(3, 'running'), member(4, 'running')];
    expect(act(3, members).remove).toEqual([]);
  });

  test('eligible expiry is recorded, so the choice survives the next pass', () => {
    const members = [member(1, 'in-service', { expiry: 'eligible' }), member(2)];
    const d = decide(2, members);
    expect(d.flag).toEqual([{ instanceId: 'web-1', replacing: { reason: 'expired-eligible', sinceSeq: 3 } }]);
    expect(d.create).toBe(1);
  });
});

describe('decideReconcile: termination notice deadline', () => {
  const MIN = 60_000;
  const at = (ms: number) => new Date(ms).toISOString();
  /** In service with a spot notice: the host is reclaimed at `deadlineMs`. */
  const noticed = (seq: number, deadlineMs: number, extra: Partial<Member> = {}): Member =>
    member(seq, 'in-service', { health: 'termination-notice', noticeDeadline: at(deadlineMs), ...extra });
  const drain5m = { drainTimeoutMs: 5 * MIN };

  test('deadline further off than the drain timeout: create-before-destroy, and a recheck when it stops being so', () => {
    const now = 1_000 * MIN;
    const spot = noticed(1, now + 20 * MIN);
    const first = decide(2, [spot, member(2)], { now, ...drain5m });
    expect(first).toMatchObject({ create: 1, remove: [], flag: [{ instanceId: 'web-1', replacing: { reason: 'termination-notice', sinceSeq: 3 } }] });
    // Booting replacement: still waiting, and the group must look again when draining can no longer wait.
    const booting = decide(2, [flagged(spot, 'termination-notice', 3), member(2), member(3, 'running')], { now: now + MIN, ...drain5m });
    expect(booting).toMatchObject({ create: 0, remove: [], recheckAt: now + 15 * MIN });
    // The replacement serves first: the usual release, nothing left to recheck.
    const ready = decide(2, [flagged(spot, 'termination-notice', 3), member(2), member(3)], { now: now + 2 * MIN, ...drain5m });
    expect(ready.remove).toEqual([{ instanceId: 'web-1', reason: 'termination-notice', drain: true }]);
    expect(ready.recheckAt).toBeUndefined();
  });

  test('at the recheck the noticed member is drained even though its replacement does not serve yet', () => {
    const now = 1_000 * MIN;
    const spot = flagged(noticed(1, now + 5 * MIN), 'termination-notice', 3);
    const d = decide(2, [spot, member(2), member(3, 'running')], { now, ...drain5m });
    expect(d).toMatchObject({ create: 0, remove: [{ instanceId: 'web-1', reason: 'termination-notice', drain: true }] });
    expect(d.recheckAt).toBeUndefined();
  });

  test('deadline closer than the drain timeout (a spot notice is 2 min): replacement created and the member drained in the same pass', () => {
    const now = 1_000 * MIN;
    const d = decide(1, [noticed(1, now + 2 * MIN)], { now, ...drain5m });
    expect(d.create).toBe(1);
    expect(d.remove).toEqual([{ instanceId: 'web-1', reason: 'termination-notice', drain: true }]);
    // Next pass: the member drains (it holds the surge slot); nothing more is created.
    expect(act(1, [{ ...noticed(1, now + 2 * MIN), leaving: true, phase: 'draining' }, member(2, 'provisioning')], { now, ...drain5m }).create).toBe(0);
  });

  test('a notice overtakes another reason for replacement, and is named as the reason it goes now', () => {
    const now = 1_000 * MIN;
    const sick = flagged(noticed(1, now + MIN, { health: 'unhealthy' }), 'unhealthy', 3);
    expect(act(2, [sick, member(2), member(3, 'running')], { now, ...drain5m }).remove).toEqual([{ instanceId: 'web-1', reason: 'termination-notice', drain: true }]);
  });

  test('the deadline counts even once health moved on (unhealthy, healthy again)', () => {
    const now = 1_000 * MIN;
    const d = decide(2, [noticed(1, now + 20 * MIN, { health: 'healthy' }), member(2)], { now, ...drain5m });
    expect(d.flag).toEqual([{ instanceId: 'web-1', replacing: { reason: 'termination-notice', sinceSeq: 3 } }]);
  });

  test('without a drain timeout only a deadline reached is that close; a notice without a deadline never forces the drain', () => {
    const now = 1_000 * MIN;
    const waiting = [flagged(noticed(1, now + MIN), 'termination-notice', 3), member(2), member(3, 'running')];
    expect(decide(2, waiting, { now })).toMatchObject({ remove: [], recheckAt: now + MIN });
    expect(decide(2, waiting, { now: now + MIN }).remove).toHaveLength(1);
    const undated = [flagged(member(1, 'in-service', { health: 'termination-notice' }), 'termination-notice', 3), member(2), member(3, 'running')];
    expect(decide(2, undated, { now, ...drain5m })).toMatchObject({ remove: [] });
    expect(decide(2, undated, { now, ...drain5m }).recheckAt).toBeUndefined();
  });
});

describe('termination notice timing', () => {
  const deadline = '2030-01-01T00:10:00.000Z';
  const t = Date.parse(deadline);

  test('mustDrainBy: the deadline minus the drain timeout', () => {
    expect(mustDrainBy(deadline, 300_000)).toBe(t - 300_000);
    expect(mustDrainBy(undefined, 300_000)).toBeUndefined();
    expect(mustDrainBy('not a time', 300_000)).toBeUndefined();
  });

  test('drainBudgetMs: the drain timeout, cut to what is left before the deadline, never negative', () => {
    expect(drainBudgetMs(300_000, undefined, t)).toBe(300_000);
    expect(drainBudgetMs(300_000, deadline, t - 600_000)).toBe(300_000);
    expect(drainBudgetMs(300_000, deadline, t - 90_000)).toBe(90_000);
    expect(drainBudgetMs(300_000, deadline, t + 5_000)).toBe(0);
  });
});

describe('countMembers', () => {
  test('splits running, pending and draining; ignores gone', () => {
    const members = [member(1, 'running'), member(2, 'provisioning'), member(3, 'running', { leaving: true }), member(4, 'terminating'), member(5, 'terminated'), member(6, 'in-service')];
    expect(countMembers(members)).toEqual({ running: 2, pending: 1, draining: 2, inService: 1 });
  });
});

describe('creationBackoffMs', () => {
  test('doubles from 5 s and caps at 5 min', () => {
    expect([0, 1, 2, 3, 10].map(creationBackoffMs)).toEqual([0, 5000, 10000, 20000, 300000]);
  });
});

describe('newInstanceId', () => {
  test('prefix is the kind; the rest comes from the given randomness', () => {
    let n = 0;
    expect(newInstanceId('web', () => (n++ % 32) / 32)).toBe('web-0123456789ab');
    expect(newInstanceId('api', () => 0.999)).toMatch(/^api-z{12}$/);
  });
});
