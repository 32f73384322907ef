import type { EC2Client } from '@aws-sdk/client-ec2';
import { defaultEc2RateLimits, TokenBucket } from '../../adapters/aws/token-bucket';
import { terminateInstanceBatch } from '../../adapters/ec2/terminate-batch';
import { ProgressReporter, resumableProgress, startProgress, type GcProgress } from '../../activities/gc/progress';
import { sortTagged, whyNotOwned } from '../../activities/gc/suspects';
import { awsError } from '../support/faults';

const NOW = Date.parse('2030-01-01T00:00:00Z');
const GRACE = 60_000;
const old = new Date(NOW - 10 * GRACE);

describe('sortTagged', () => {
  const owners = new Map<string, string | undefined>([
    ['web-a', 'i-a'],
    ['web-b', undefined],
    ['web-c', 'i-c'],
  ]);

  test('owned as listed, unrecorded owners, young ones: not suspects; absent, mismatched and untagged: suspects', () => {
    const sorted = sortTagged(
      [
        { ec2InstanceId: 'i-a', instanceId: 'web-a', launchedAt: old },
        // Its workflow has not recorded an EC2 id yet: any instance with its tag may be the one it launches.
        { ec2InstanceId: 'i-b', instanceId: 'web-b', launchedAt: old },
        { ec2InstanceId: 'i-b2', instanceId: 'web-b', launchedAt: old },
        { ec2InstanceId: 'i-young', instanceId: 'web-nobody', launchedAt: new Date(NOW - GRACE + 1) },
        { ec2InstanceId: 'i-c2', instanceId: 'web-c', launchedAt: old },
        { ec2InstanceId: 'i-gone', instanceId: 'web-gone', launchedAt: old },
        { ec2InstanceId: 'i-untagged', launchedAt: old },
      ],
      owners,
      NOW,
      GRACE,
    );
    expect(sorted.owned).toBe(3);
    expect(sorted.young).toBe(1);
    expect(sorted.suspects.map((s) => s.ec2InstanceId)).toEqual(['i-c2', 'i-gone', 'i-untagged']);
    expect(sorted.suspects[1]).toEqual({ ec2InstanceId: 'i-gone', instanceId: 'web-gone', launchedAt: old.toISOString() });
  });

  test('exactly at the grace an instance is old enough', () => {
    const sorted = sortTagged([{ ec2InstanceId: 'i-x', instanceId: 'web-x', launchedAt: new Date(NOW - GRACE) }], new Map(), NOW, GRACE);
    expect(sorted.suspects).toHaveLength(1);
  });
});

describe('whyNotOwned', () => {
  const suspect = { ec2InstanceId: 'i-1', instanceId: 'web-1' };
  test.each([
    [{ status: 'RUNNING' as const, ec2InstanceId: 'i-1' }, undefined],
    [{ status: 'RUNNING' as const }, undefined],
    [{ status: 'RUNNING' as const, ec2InstanceId: 'i-2' }, "a duplicate: web-1's workflow runs i-2"],
    [{ status: 'COMPLETED' as const, ec2InstanceId: 'i-1' }, 'no running workflow owns web-1'],
    [{ status: 'NOT_FOUND' as const }, 'no running workflow owns web-1'],
  ])('%j → %s', (run, why) => expect(whyNotOwned(suspect, run)).toBe(why));

  test('an instance without an instance-id tag is nobody’s', () => {
    expect(whyNotOwned({ ec2InstanceId: 'i-1' }, undefined)).toBe('no nstance:instance-id tag');
  });
});

describe('resumableProgress', () => {
  const confirming: GcProgress = { ...startProgress(), phase: 'confirming', pending: [{ ec2InstanceId: 'i-1', instanceId: 'web-1' }] };

  test('details past the listings resume; listing, empty or foreign details start afresh', () => {
    expect(resumableProgress(JSON.parse(JSON.stringify(confirming)))).toEqual(confirming);
    expect(resumableProgress({ ...confirming, phase: 'listing' })).toBeUndefined();
    expect(resumableProgress(undefined)).toBeUndefined();
    expect(resumableProgress('listed 5 instances')).toBeUndefined();
    expect(resumableProgress({ phase: 'terminating', counts: {}, orphans: [] })).toBeUndefined();
  });

  test('counts missing from older details read as zero', () => {
    const resumed = resumableProgress({ ...confirming, counts: { described: 4 } });
    expect(resumed?.counts).toEqual({ ...startProgress().counts, described: 4 });
  });
});

test('ProgressReporter sends details at most once per interval unless forced, each a snapshot', () => {
  const sent: GcProgress[] = [];
  let now = 0;
  const reporter = new ProgressReporter((d) => sent.push(d), 1_000, () => now);
  const progress = startProgress();
  reporter.report(progress);
  now = 500;
  progress.counts.described = 1;
  reporter.report(progress);
  reporter.report(progress, true);
  now = 1_600;
  progress.orphans.push({ ec2InstanceId: 'i-1', why: 'test' });
  reporter.report(progress);
  expect(sent.map((d) => [d.counts.described, d.orphans.length])).toEqual([
    [0, 0],
    [1, 0],
    [1, 1],
  ]);
});

describe('terminateInstanceBatch', () => {
  /** A stand-in EC2 client: TerminateInstances fails the whole call if any id is in `unknown`. */
  function fakeEc2(unknown: Set<string>, refuse = new Set<string>()) {
    const calls: string[][] = [];
    const ec2 = {
      send: async (command: { input: { InstanceIds?: string[] } }) => {
        const ids = command.input.InstanceIds ?? [];
        calls.push(ids);
        if (ids.some((id) => unknown.has(id))) throw awsError('InvalidInstanceID.NotFound', `The instance ID '${ids.find((id) => unknown.has(id))}' does not exist`);
        if (ids.some((id) => refuse.has(id))) throw awsError('OperationNotPermitted', 'termination protection');
        return {};
      },
    } as unknown as EC2Client;
    return { ec2, calls };
  }

  test('one call for the batch when EC2 accepts it, one terminate token per instance', async () => {
    const { ec2, calls } = fakeEc2(new Set());
    const taken: number[] = [];
    const terminate = new TokenBucket({ capacity: 1000, refillPerSecond: 20 });
    const take = terminate.take.bind(terminate);
    terminate.take = (count = 1) => (taken.push(count), take(count));
    const outcome = await terminateInstanceBatch({ ec2, limits: { ...defaultEc2RateLimits(), terminate } }, ['i-1', 'i-2', 'i-3']);
    expect(outcome).toEqual({ terminated: ['i-1', 'i-2', 'i-3'], refused: [], calls: 1 });
    expect(calls).toEqual([['i-1', 'i-2', 'i-3']]);
    expect(taken.reduce((a, b) => a + b, 0)).toBe(3);
  });

  test('an unknown id spoils the call: each is then tried alone, the unknown one counting as gone; a refused one is reported', async () => {
    const { ec2, calls } = fakeEc2(new Set(['i-2']), new Set(['i-3']));
    const outcome = await terminateInstanceBatch({ ec2, limits: defaultEc2RateLimits() }, ['i-1', 'i-2', 'i-3', 'i-4']);
    expect(calls).toEqual([['i-1', 'i-2', 'i-3', 'i-4'], ['i-1'], ['i-2'], ['i-3'], ['i-4']]);
    expect(outcome.terminated).toEqual(['i-1', 'i-2', 'i-4']);
    expect(outcome.refused).toEqual([{ ec2InstanceId: 'i-3', error: 'OperationNotPermitted: termination protection' }]);
    expect(outcome.calls).toBe(5);
  });

  test('throttling is not a bad id: it throws, retryable, without trying ids one by one', async () => {
    const calls: string[][] = [];
    const ec2 = {
      send: async (command: { input: { InstanceIds?: string[] } }) => {
        calls.push(command.input.InstanceIds ?? []);
        throw awsError('RequestLimitExceeded');
      },
    } as unknown as EC2Client;
    await expect(terminateInstanceBatch({ ec2, limits: defaultEc2RateLimits() }, ['i-1', 'i-2'])).rejects.toMatchObject({ type: 'Aws.RequestLimitExceeded', nonRetryable: false });
    expect(calls).toHaveLength(1);
  });
});
