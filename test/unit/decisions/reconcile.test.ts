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

describe('decideReconcile: size', () => {
  test('creates what is missing', () => {
    expect(decideReconcile({ desired: 3, members: [], now: 0 })).toEqual({ create: 3, remove: [], heldBack: false });
    expect(decideReconcile({ desired: 3, members: [member(1)], now: 0 }).create).toBe(2);
  });

  test('counts provisioning instances toward the size (no double creation while they boot)', () => {
    expect(decideReconcile({ desired: 2, members: [member(1, 'provisioning'), member(2, 'provisioning')], now: 0 }).create).toBe(0);
  });

  test('scales down oldest first, by creation order, draining', () => {
    const d = decideReconcile({ desired: 1, members: [member(5), member(2), member(9), member(7)], now: 0 });
    expect(d.remove).toEqual([2, 5, 7].map((n) => ({ instanceId: `web-${n}`, reason: 'scale-down', drain: true })));
  });

  test('instances already leaving or gone do not count and are not chosen again', () => {
    const members = [member(1, 'running', { leaving: true }), member(2, 'terminating'), member(3, 'failed'), member(4)];
    expect(decideReconcile({ desired: 1, members, now: 0 })).toEqual({ create: 0, remove: [], heldBack: false });
    expect(decideReconcile({ desired: 2, members, now: 0 }).create).toBe(1);
  });

  test('scale to zero removes everything active', () => {
    expect(ids(decideReconcile({ desired: 0, members: [member(1), member(2, 'provisioning')], now: 0 }).remove)).toEqual(['web-1', 'web-2']);
  });

  test('holds creation back during a failure backoff, but still scales down', () => {
    expect(decideReconcile({ desired: 2, members: [], now: 1000, backoffUntil: 5000 })).toEqual({ create: 0, remove: [], heldBack: true });
    expect(decideReconcile({ desired: 2, members: [], now: 5000, backoffUntil: 5000 }).create).toBe(2);
    expect(ids(decideReconcile({ desired: 0, members: [member(1)], now: 1000, backoffUntil: 5000 }).remove)).toEqual(['web-1']);
  });

  test('converged group: nothing to do', () => {
    expect(decideReconcile({ desired: 2, members: [member(1), member(2)], now: 0 })).toEqual({ create: 0, remove: [], heldBack: false });
  });
});

describe('decideReconcile: replacement', () => {
  test('a lost instance is terminated at once (no drain) and replaced in the same pass', () => {
    const d = decideReconcile({ desired: 2, members: [member(1, 'in-service', { lost: true }), member(2)], now: 0 });
    expect(d.remove).toEqual([{ instanceId: 'web-1', reason: 'lost', drain: false }]);
    expect(d.create).toBe(1);
  });

  test('unhealthy: create-before-destroy, one over size, drain only once the replacement serves', () => {
    const sick = member(1, 'in-service', { health: 'unhealthy' });
    const first = decideReconcile({ desired: 2, members: [sick, member(2)], now: 0 });
    expect(first).toEqual({ create: 1, remove: [], heldBack: false });
    const booting = decideReconcile({ desired: 2, members: [sick, member(2), member(3, 'running')], now: 0 });
    expect(booting).toEqual({ create: 0, remove: [], heldBack: false });
    const ready = decideReconcile({ desired: 2, members: [sick, member(2), member(3)], now: 0 });
    expect(ready.remove).toEqual([{ instanceId: 'web-1', reason: 'unhealthy', drain: true }]);
    expect(ready.create).toBe(0);
  });

  test('a termination notice or a replace request is handled the same way', () => {
    const notice = decideReconcile({ desired: 1, members: [member(1, 'in-service', { health: 'termination-notice' })], now: 0 });
    expect(notice.create).toBe(1);
    const asked = decideReconcile({ desired: 1, members: [member(1, 'in-service', { replaceRequested: true }), member(2)], now: 0 });
    expect(asked.remove).toEqual([{ instanceId: 'web-1', reason: 'replace-requested', drain: true }]);
  });

  test('eligible expiry: oldest first, one at a time, only while the group is calm', () => {
    const old1 = member(1, 'in-service', { expiry: 'eligible' });
    const old2 = member(2, 'in-service', { expiry: 'eligible' });
    expect(decideReconcile({ desired: 2, members: [old1, old2], now: 0 }).create).toBe(1);
    // Replacement ready: the oldest goes, the second waits its turn.
    const next = decideReconcile({ desired: 2, members: [old1, old2, member(3)], now: 0 });
    expect(next.remove).toEqual([{ instanceId: 'web-1', reason: 'expired-eligible', drain: true }]);
    // Something draining or unhealthy: no opportunistic expiry.
    const draining = member(9, 'draining', { leaving: true });
    expect(decideReconcile({ desired: 2, members: [old1, old2, draining], now: 0 })).toEqual({ create: 0, remove: [], heldBack: false });
    const sick = member(4, 'in-service', { health: 'unhealthy' });
    const withSick = decideReconcile({ desired: 3, members: [old1, old2, sick], now: 0 });
    expect(withSick.create).toBe(1); // only the sick one is being replaced
  });

  test('forced expiry is replaced regardless of the group being busy', () => {
    const forced = member(1, 'in-service', { expiry: 'forced' });
    const draining = member(9, 'draining', { leaving: true });
    const sick = member(2, 'in-service', { health: 'unhealthy' });
    const d = decideReconcile({ desired: 2, members: [forced, sick, draining], now: 0 });
    expect(d.create).toBe(1); // one over size at most
    const ready = decideReconcile({ desired: 2, members: [forced, sick, member(3), member(4)], now: 0 });
    expect(ids(ready.remove).sort()).toEqual(['web-1', 'web-2']);
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
