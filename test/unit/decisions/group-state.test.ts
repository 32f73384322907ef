import type { Member } from '../../../common/types';
import { packMember, packMembers, unpackMember } from '../../../workflows/group-carry';
import { applyLaunched, applyUpdate, carryGroupState, finishRebuild, forget, initialGroupState, restoreGroupState, type GroupState } from '../../../workflows/group-state';
import { nextStepRetry, stepBackoffMs, stepError } from '../../../workflows/group-steps';

/** A state past its rebuild, holding the given members. */
function withMembers(...members: Member[]): GroupState {
  const state = initialGroupState();
  finishRebuild(state, members, 0);
  return state;
}

describe('group state: instance reports', () => {
  test('a member the group forgot is never brought back by a late report: the instance is asked to leave instead', () => {
    const state = withMembers({ instanceId: 'web-1', seq: 1, phase: 'in-service', ec2InstanceId: 'i-1' });
    state.members['web-1'].leaving = true;
    forget(state, 'web-1');
    // Its "draining" report was already on its way.
    applyUpdate(state, { instanceId: 'web-1', phase: 'draining', ec2InstanceId: 'i-1' }, 1);
    expect(state.members['web-1']).toBeUndefined();
    expect(state.strays).toEqual(['web-1']);
    // Its final word settles it.
    applyUpdate(state, { instanceId: 'web-1', phase: 'terminated' }, 2);
    expect(state.members).toEqual({});
    expect(state.strays).toEqual([]);
  });

  test('an instance the group never created is not adopted, however long ago it was forgotten', () => {
    const state = withMembers();
    for (let i = 0; i < 5000; i++) applyUpdate(state, { instanceId: `web-${i}`, phase: 'in-service' }, i);
    expect(state.members).toEqual({});
    // Strays are bounded too.
    expect(state.strays).toHaveLength(1000);
  });

  test('reports heard while rebuilding wait, then count for members found and make strays of the rest', () => {
    const state = initialGroupState();
    applyUpdate(state, { instanceId: 'web-a', phase: 'in-service', health: 'unhealthy' }, 1);
    applyUpdate(state, { instanceId: 'web-b', phase: 'running' }, 2);
    expect(state.members).toEqual({});
    finishRebuild(state, [{ instanceId: 'web-a', seq: 9, phase: 'running' }], 3);
    expect(state.members['web-a']).toMatchObject({ phase: 'in-service', health: 'unhealthy', seq: 1 });
    expect(state.nextSeq).toBe(2);
    expect(state.strays).toEqual(['web-b']);
  });

  test("a start batch's launches count as running reports, but never move a member back or revive one", () => {
    const state = withMembers(
      { instanceId: 'web-1', seq: 1, phase: 'provisioning' },
      { instanceId: 'web-2', seq: 2, phase: 'in-service', ec2InstanceId: 'i-2' },
      { instanceId: 'web-3', seq: 3, phase: 'provisioning' },
    );
    state.members['web-3'].leaving = true;
    state.failures = 2;
    state.backoffUntil = 99;
    applyLaunched(state, { 'web-1': { ec2InstanceId: 'i-1', privateIp: '10.0.0.1' }, 'web-2': { ec2InstanceId: 'i-2' }, 'web-3': { ec2InstanceId: 'i-3' }, 'web-9': { ec2InstanceId: 'i-9' } }, 5);
    expect(state.members['web-1']).toMatchObject({ phase: 'running', ec2InstanceId: 'i-1', privateIp: '10.0.0.1' });
    expect(state.members['web-2'].phase).toBe('in-service');
    expect(state.members['web-3']).toMatchObject({ phase: 'provisioning', leaving: true });
    expect(state.members['web-9']).toBeUndefined();
    expect(state.strays).toEqual([]);
    // A launch that went through ends the creation backoff, as the instance's own running report did.
    expect(state.failures).toBe(0);
    expect(state.backoffUntil).toBeUndefined();
  });

  test('a failed launch backs creation off; a leaving member failing does not', () => {
    const state = withMembers({ instanceId: 'web-1', seq: 1, phase: 'provisioning' }, { instanceId: 'web-2', seq: 2, phase: 'in-service', leaving: true });
    applyUpdate(state, { instanceId: 'web-1', phase: 'failed', error: 'no capacity' }, 1000);
    expect(state).toMatchObject({ failures: 1, backoffUntil: 6000, lastError: 'instance web-1: no capacity' });
    applyUpdate(state, { instanceId: 'web-2', phase: 'failed' }, 2000);
    expect(state.failures).toBe(1);
  });
});

describe('carried state', () => {
  const full: Member = {
    instanceId: 'web-0123456789ab',
    seq: 42,
    phase: 'in-service',
    ec2InstanceId: 'i-0123456789abcdef0',
    launchedAt: '2026-12-01T10:00:00.000Z',
    privateIp: '10.0.12.34',
    leaving: true,
    lost: true,
    replaceRequested: true,
    tookOver: true,
    health: 'termination-notice',
    noticeDeadline: '2026-12-01T10:02:00.000Z',
    expiry: 'forced',
    replacing: { reason: 'termination-notice', sinceSeq: 40 },
  };

  test('a replacement that took over keeps the mark beside a launch version', () => {
    const replacement: Member = { instanceId: 'web-2', seq: 2, phase: 'in-service', tookOver: true, launch: 3 };
    expect(unpackMember(packMember(replacement))).toEqual(replacement);
    expect(unpackMember(packMember({ ...replacement, tookOver: undefined }))).not.toHaveProperty('tookOver');
  });

  test('a member survives packing whole; a bare one packs to three values', () => {
    expect(unpackMember(packMember(full))).toEqual(full);
    const bare: Member = { instanceId: 'web-1', seq: 1, phase: 'provisioning' };
    expect(packMember(bare)).toEqual(['web-1', 1, 0]);
    expect(unpackMember(packMember(bare))).toEqual(bare);
  });

  test('5,000 members carry in well under 1 MB', () => {
    const members = Array.from({ length: 5000 }, (_, i): Member => ({
      instanceId: `web-${String(i).padStart(12, '0')}`,
      seq: 100_000 + i,
      phase: 'in-service',
      ec2InstanceId: `i-${String(i).padStart(17, '0')}`,
      launchedAt: new Date(1_764_000_000_000 + i * 1000).toISOString(),
      privateIp: `10.0.${i % 250}.${i % 200}`,
      health: 'healthy',
    }));
    const bytes = JSON.stringify(packMembers(members)).length;
    expect(bytes).toBeLessThan(450_000);
    // For the record in the test output: bytes per member.
    expect(Math.round(bytes / 5000)).toBeLessThan(90);
  });

  test('a restored state is the carried one; a state carried by a run from before fleet scale is read too', () => {
    const state = withMembers({ instanceId: 'web-1', seq: 1, phase: 'running' });
    state.strays.push('web-9');
    const again = restoreGroupState(carryGroupState(state));
    expect(again.members).toEqual(state.members);
    expect(again.strays).toEqual(['web-9']);
    expect(again.rebuilding).toBe(false);

    const legacy = restoreGroupState({
      members: { 'web-1': { instanceId: 'web-1', seq: 1, phase: 'in-service', createdAt: '2026-11-25T00:00:00.000Z', error: 'old' } },
      nextSeq: 2,
      removed: false,
      failures: 0,
      images: {},
      forgotten: ['web-0'],
    });
    expect(legacy.members['web-1']).toEqual({ instanceId: 'web-1', seq: 1, phase: 'in-service' });
    expect(legacy.rebuilding).toBe(false);
    // No carried state at all: rebuild first.
    expect(restoreGroupState(undefined).rebuilding).toBe(true);
  });
});

describe('step backoff', () => {
  test('5 s doubling, capped at 5 min; the first failing step in order is the one shown', () => {
    expect([1, 2, 3, 10].map(stepBackoffMs)).toEqual([5000, 10000, 20000, 300000]);
    const steps = { observe: { failures: 1, retryAt: 9000, error: 'throttled' }, config: { failures: 2, retryAt: 7000, error: 'AccessDenied' } };
    expect(stepError(steps)).toBe('config: AccessDenied');
    expect(nextStepRetry(steps)).toBe(7000);
    expect(nextStepRetry({})).toBeUndefined();
  });
});
