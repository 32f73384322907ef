import { expiredRecords, type StoredRecord } from '../../adapters/s3/instance-records';
import { recordOf } from '../../workflows/group-records';

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
