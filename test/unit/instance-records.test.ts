import { expiredRecords, type StoredRecord } from '../../adapters/s3/instance-records';
import { resumeFrom } from '../../activities/instance-record-activities';
import type { InstanceRecord, Member } from '../../common/types';
import { recordOf } from '../../workflows/group-records';
import { CARRIED_GONE_RECORDS, packRecords, unpackRecords } from '../../workflows/group-records-carry';
import { carryGroupState, finishRebuild, initialGroupState, restoreGroupState } from '../../workflows/group-state';

const ref = { shard: 's1', tenant: 'default', group: 'web' };

describe('instance records', () => {
  test('a record carries what the group knows of the member, nothing undefined', () => {
    const r = recordOf(ref, { instanceId: 'web-1', seq: 1, phase: 'in-service', ec2InstanceId: 'i-1', privateIp: '10.0.0.5', replacing: { reason: 'drift', sinceSeq: 2 } }, 0);
    expect(r).toEqual({ ...ref, id: 'web-1', phase: 'in-service', ec2InstanceId: 'i-1', privateIp: '10.0.0.5', replacing: 'drift', updatedAt: '1970-01-01T00:00:00.000Z' });
    expect(JSON.stringify(r).length).toBeLessThan(300);
  });

  test('only records past the retention whose instance workflow no longer runs are removed', () => {
    const at = (id: string, lastModified: number): StoredRecord => ({ key: `k/${id}`, tenant: 'default', id, lastModified });
    const records = [at('old-gone', 0), at('old-running', 0), at('new-gone', 59_000)];
    expect(expiredRecords(records, new Set(['old-running']), 60_000, 30_000).map((r) => r.id)).toEqual(['old-gone']);
  });
});

describe('queued records across continue-as-new', () => {
  const members: Member[] = [
    { instanceId: 'web-1', seq: 1, phase: 'in-service', ec2InstanceId: 'i-1', privateIp: '10.0.0.1', launchedAt: '2026-12-01T00:00:00.000Z', health: 'healthy' },
    { instanceId: 'web-2', seq: 2, phase: 'running', ec2InstanceId: 'i-2', leaving: true, replacing: { reason: 'drift', sinceSeq: 3 } },
  ];
  const gone: InstanceRecord = {
    ...ref,
    id: 'web-0',
    phase: 'terminated',
    ec2InstanceId: 'i-0',
    privateIp: '10.0.0.9',
    launchedAt: '2026-11-30T23:00:00.000Z',
    health: 'unhealthy',
    expiry: 'forced',
    replacing: 'expired-forced',
    leaving: true,
    updatedAt: '2026-12-01T00:00:05.123Z',
  };
  const withQueued = () => {
    const state = initialGroupState();
    finishRebuild(state, members, 0);
    state.records = {
      'web-1': recordOf(ref, state.members['web-1'], Date.parse('2026-12-01T00:00:01.000Z')),
      'web-2': recordOf(ref, state.members['web-2'], Date.parse('2026-12-01T00:00:02.000Z')),
      'web-0': gone,
    };
    return state;
  };

  test("are carried (members' as [id, time] only, gone ones whole) and come back as they were queued", () => {
    const state = withQueued();
    const carried = JSON.parse(JSON.stringify(carryGroupState(state, { records: true }))) as ReturnType<typeof carryGroupState>;
    expect(carried.records?.slice(0, 2)).toEqual([
      ['web-1', Date.parse('2026-12-01T00:00:01.000Z')],
      ['web-2', Date.parse('2026-12-01T00:00:02.000Z')],
    ]);
    const next = restoreGroupState(carried);
    expect(unpackRecords(ref, carried.records, next.members)).toEqual(state.records);
  });

  test('runs from before the patch carry none (and a carried state without them restores none)', () => {
    const state = withQueued();
    const before = carryGroupState(state);
    expect(before.records).toBeUndefined();
    expect(unpackRecords(ref, before.records, restoreGroupState(before).members)).toEqual({});
    state.records = {};
    expect(carryGroupState(state, { records: true }).records).toBeUndefined();
  });

  test('are bounded: a pair per member, and at most CARRIED_GONE_RECORDS whole records (the newest)', () => {
    const state = initialGroupState();
    const many = Array.from({ length: 2000 }, (_, i): Member => ({ instanceId: `web-${String(i).padStart(12, '0')}`, seq: i + 1, phase: 'in-service', ec2InstanceId: `i-${i}`, privateIp: '10.0.0.1' }));
    finishRebuild(state, many, 0);
    state.records = {};
    for (const m of many) state.records[m.instanceId] = recordOf(ref, m, 1_764_547_200_000);
    for (let i = 0; i < CARRIED_GONE_RECORDS + 500; i++) state.records[`gone-${i}`] = { ...gone, id: `gone-${i}`, updatedAt: new Date(1_764_547_200_000 + i * 1000).toISOString() };
    const packed = packRecords(state.records, state.members);
    expect(packed).toHaveLength(2000 + CARRIED_GONE_RECORDS);
    const restored = unpackRecords(ref, packed, state.members);
    expect(restored['gone-499']).toBeUndefined();
    expect(restored['gone-500']).toBeDefined();
    expect(restored[`gone-${CARRIED_GONE_RECORDS + 499}`]).toEqual({ ...gone, id: `gone-${CARRIED_GONE_RECORDS + 499}`, updatedAt: new Date(1_764_547_200_000 + (CARRIED_GONE_RECORDS + 499) * 1000).toISOString() });
    // A member's queued record costs its id and a time: 20 bytes past the id (a whole record is ~200).
    const memberBytes = JSON.stringify(packed.slice(0, 2000)).length / 2000;
    expect(memberBytes).toBeLessThanOrEqual(many[0].instanceId.length + 20);
  });
});

describe('a retried batch of records', () => {
  const batch = Array.from({ length: 250 }, (_, i): InstanceRecord => ({ ...ref, id: `web-${i}`, phase: 'running', updatedAt: 'x' }));

  test('goes on after the records its last attempt heartbeated as written', () => {
    expect(resumeFrom({ written: 200, of: 250, last: 'web-199' }, batch)).toBe(200);
    expect(resumeFrom(undefined, batch)).toBe(0);
  });

  test('starts again when the details are of another batch or shape', () => {
    expect(resumeFrom({ written: 200, of: 300, last: 'web-199' }, batch)).toBe(0);
    expect(resumeFrom({ written: 200, of: 250, last: 'web-7' }, batch)).toBe(0);
    expect(resumeFrom({ written: 251, of: 250 }, batch)).toBe(0);
    expect(resumeFrom(200, batch)).toBe(0);
  });
});
