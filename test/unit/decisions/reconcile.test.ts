import type { Member, Phase } from '../../../common/types';
import { countMembers, creationBackoffMs, decideReconcile, newInstanceId, type Removal } from '../../../workflows/decisions/reconcile';

const member = (seq: number, phase: Phase = 'in-service', extra: Partial<Member> = {}): Member => ({
  instanceId: `web-${seq}`,
  phase,
  seq,
  createdAt: new Date(seq * 1000).toISOString(),
  ...extra,
});
const ids = (removals: Removal[]) => removals.map((r) => r.instanceId);

/** The decision, with nextSeq after the members' highest (as the group workflow passes it). */
function decide(desired: number, members: Member[], extra: { now?: number; backoffUntil?: number } = {}) {
  const nextSeq = Math.max(0, ...members.map((m) => m.seq)) + 1;
  return decideReconcile({ desired, members, now: extra.now ?? 0, backoffUntil: extra.backoffUntil, nextSeq });
}
/** The decision without its flags, for tests about creation and removal only. */
function act(desired: number, members: Member[], extra: { now?: number; backoffUntil?: number } = {}) {
  const { create, remove, heldBack } = decide(desired, members, extra);
  return { create, remove, heldBack };
}
/** A member that the group already flagged for replacement (as recorded from an earlier decision). */
const flagged = (m: Member, reason: Removal['reason'], sinceSeq: number): Member => ({ ...m, replacing: { reason, sinceSeq } });

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
    expect(act(2, members).create).toBe(1);
  });

  test('scale to zero removes everything active', () => {
    expect(ids(act(0, [member(1), member(2, 'provisioning')]).remove)).toEqual(['web-1', 'web-2']);
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

describe('countMembers', () => {
  test('splits running, pending and draining; ignores gone', () => {
    const members = [member(1, 'running'), member(2, 'provisioning'), member(3, 'running', { leaving: true }), member(4, 'terminating'), member(5, 'terminated'), member(6, 'in-service')];
    expect(countMembers(members)).toEqual({ running: 2, pending: 1, draining: 2 });
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
