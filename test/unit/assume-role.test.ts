import { ApplicationFailure } from '@temporalio/common';
import { assumeRoleError, assumeRoleSettings, refreshingCredentials, REFRESH_BEFORE_MS } from '../../adapters/aws/assume-role';

describe('assume_role credentials', () => {
  it('are fetched once, shared by concurrent callers, and refreshed before they expire', async () => {
    let now = 1_000_000;
    let n = 0;
    const credentials = refreshingCredentials(async () => {
      n++;
      await new Promise((r) => setTimeout(r, 5));
      return { accessKeyId: `AKIA${n}`, secretAccessKey: 's', sessionToken: 't', expiration: new Date(now + 60 * 60_000) };
    }, () => now);
    const first = await Promise.all([credentials(), credentials(), credentials()]);
    expect(first.map((c) => c.accessKeyId)).toEqual(['AKIA1', 'AKIA1', 'AKIA1']);
    now += 60 * 60_000 - REFRESH_BEFORE_MS - 1_000; // still more than the window before expiry
    expect((await credentials()).accessKeyId).toBe('AKIA1');
    now += 2_000; // inside the window: refreshed, before they expire
    expect((await credentials()).accessKeyId).toBe('AKIA2');
    expect(credentials.fetches()).toBe(2);
  });

  it('does not cache a failure', async () => {
    let fail = true;
    const credentials = refreshingCredentials(async () => {
      if (fail) throw new Error('throttled');
      return { accessKeyId: 'A', secretAccessKey: 's' };
    });
    await expect(credentials()).rejects.toThrow('throttled');
    fail = false;
    await expect(credentials()).resolves.toMatchObject({ accessKeyId: 'A' });
  });

  it('turns an AccessDenied into a non-retryable error naming the role and the external_id to check', () => {
    const settings = assumeRoleSettings({ role_arn: 'arn:aws:iam::210987654321:role/fleet', external_id: 'tenant-42', duration: '1h' }, 'use1-az1');
    expect(settings).toEqual({ roleArn: 'arn:aws:iam::210987654321:role/fleet', externalId: 'tenant-42', sessionName: 'nstance-use1-az1', durationSeconds: 3600 });
    const denied = Object.assign(new Error('User is not authorized to perform: sts:AssumeRole'), { name: 'AccessDenied', $fault: 'client' });
    const err = assumeRoleError(denied, settings) as ApplicationFailure;
    expect(err.nonRetryable).toBe(true);
    expect(err.message).toMatch(/^sts:AssumeRole arn:aws:iam::210987654321:role\/fleet failed: AccessDenied: .*check shard\.infra\.assume_role\.external_id \("tenant-42"\)/);
    const throttled = assumeRoleError(Object.assign(new Error('slow down'), { name: 'Throttling', $fault: 'client' }), settings) as ApplicationFailure;
    expect(throttled.nonRetryable).toBe(false);
  });
});
