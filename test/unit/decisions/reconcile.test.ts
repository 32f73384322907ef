import type { Member, Phase } from '../../../common/types';
import { countMembers, creationBackoffMs, decideReconcile, newInstanceId } from '../../../workflows/decisions/reconcile';

const member = (seq: number, phase: Phase = 'running', extra: Partial<Member> = {}): Member => ({
  instanceId: `web-${seq}`,
  phase,
  seq,
  createdAt: new Date(seq * 1000).toISOString(),
  ...extra,
});

describe('decideReconcile', () => {
  test('creates what is missing', () => {
    expect(decideReconcile({ desired: 3, members: [], now: 0 })).toEqual({ create: 3, terminate: [], heldBack: false });
    expect(decideReconcile({ desired: 3, members: [member(1)], now: 0 }).create).toBe(2);
  });

  test('counts provisioning instances toward the size (no double creation while they boot)', () => {
    expect(decideReconcile({ desired: 2, members: [member(1, 'provisioning'), member(2, 'provisioning')], now: 0 }).create).toBe(0);
  });

  test('scales down oldest first, by creation order', () => {
    const members = [member(5), member(2), member(9), member(7)];
    expect(decideReconcile({ desired: 1, members, now: 0 }).terminate).toEqual(['web-2', 'web-5', 'web-7']);
  });

  test('instances already leaving or gone do not count and are not chosen again', () => {
    const members = [member(1, 'running', { leaving: true }), member(2, 'terminating'), member(3, 'failed'), member(4)];
    expect(decideReconcile({ desired: 1, members, now: 0 })).toEqual({ create: 0, terminate: [], heldBack: false });
    expect(decideReconcile({ desired: 2, members, now: 0 }).create).toBe(1);
  });

  test('scale to zero removes everything active', () => {
    expect(decideReconcile({ desired: 0, members: [member(1), member(2, 'provisioning')], now: 0 }).terminate).toEqual(['web-1', 'web-2']);
  });

  test('holds creation back during a failure backoff, but still scales down', () => {
    expect(decideReconcile({ desired: 2, members: [], now: 1000, backoffUntil: 5000 })).toEqual({ create: 0, terminate: [], heldBack: true });
    expect(decideReconcile({ desired: 2, members: [], now: 5000, backoffUntil: 5000 }).create).toBe(2);
    expect(decideReconcile({ desired: 0, members: [member(1)], now: 1000, backoffUntil: 5000 }).terminate).toEqual(['web-1']);
  });

  test('converged group: nothing to do', () => {
    expect(decideReconcile({ desired: 2, members: [member(1), member(2)], now: 0 })).toEqual({ create: 0, terminate: [], heldBack: false });
  });
});

describe('countMembers', () => {
  test('splits running, pending and draining; ignores gone', () => {
    const members = [member(1), member(2, 'provisioning'), member(3, 'running', { leaving: true }), member(4, 'terminating'), member(5, 'terminated'), member(6, 'in-service')];
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
    const id = newInstanceId('web', () => (n++ % 32) / 32);
    expect(id).toBe('web-0123456789ab');
    expect(newInstanceId('api', () => 0.999)).toMatch(/^api-z{12}$/);
  });
});
