/**
 * The subnet free-address check: one DescribeSubnets per pool every few seconds (shared by concurrent
 * selections), counted down locally per selection, and a subnet refused for addresses marked full.
 */
import { DescribeSubnetsCommand, RunInstancesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import type { Client } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { AwsClients } from '../../adapters/aws/clients';
import { activitySignal } from '../../adapters/aws/cancellation';
import { MIN_FREE_ADDRESSES, selectSubnet, SubnetAddressCache } from '../../adapters/ec2/subnets';
import { createInstanceActivities } from '../../activities/instance-activities';
import type { InstanceWorkflowInput } from '../../common/types';
import { awsError } from '../support/faults';
import { FakeClock } from '../support/fake-clock';

const unlimited = { take: async () => undefined };
const POOL = ['subnet-a', 'subnet-b'];

/** DescribeSubnets answering `free`, slowly enough (`delay`) for concurrent callers to overlap. */
function fakeEc2(free: Record<string, number>, delay = () => Promise.resolve()) {
  let describes = 0;
  const ec2 = {
    send: async (command: unknown) => {
      if (!(command instanceof DescribeSubnetsCommand)) throw new Error(`unexpected ${String(command)}`);
      describes++;
      await delay();
      return { Subnets: (command.input.SubnetIds ?? []).filter((id) => id in free).map((SubnetId) => ({ SubnetId, AvailableIpAddressCount: free[SubnetId] })) };
    },
  };
  return { ec2: ec2 as unknown as Pick<EC2Client, 'send'>, describes: () => describes };
}

test('50 concurrent selections: one DescribeSubnets, and the local count spreads them over the pool', async () => {
  const clock = new FakeClock();
  let release!: () => void;
  const answered = new Promise<void>((r) => (release = r));
  const fake = fakeEc2({ 'subnet-a': 30, 'subnet-b': 200 }, () => answered);
  const addresses = new SubnetAddressCache({ ec2: fake.ec2, describeLimit: unlimited }, 3_000, clock);
  const chosen = Array.from({ length: 50 }, () => selectSubnet({ ec2: fake.ec2, describeLimit: unlimited, addresses }, 'private', POOL));
  release();
  const subnets = await Promise.all(chosen);
  expect(fake.describes()).toBe(1);
  // subnet-a had 30 free and must keep more than MIN_FREE_ADDRESSES: 20 launches fit, the rest go to b.
  expect(subnets.filter((s) => s === 'subnet-a')).toHaveLength(30 - MIN_FREE_ADDRESSES);
  expect(subnets.filter((s) => s === 'subnet-b')).toHaveLength(50 - (30 - MIN_FREE_ADDRESSES));
});

test('the answer stands for a few seconds, then EC2 is asked again', async () => {
  const clock = new FakeClock();
  const fake = fakeEc2({ 'subnet-a': 200, 'subnet-b': 200 });
  const deps = { ec2: fake.ec2, describeLimit: unlimited, addresses: new SubnetAddressCache({ ec2: fake.ec2, describeLimit: unlimited }, 3_000, clock) };
  await selectSubnet(deps, 'private', POOL);
  await clock.advance(2_900);
  await selectSubnet(deps, 'private', POOL);
  expect(fake.describes()).toBe(1);
  await clock.advance(200);
  await selectSubnet(deps, 'private', POOL);
  expect(fake.describes()).toBe(2);
});

test('a subnet marked full is skipped until EC2 is asked again; a mark made during a describe outlives its answer', async () => {
  const clock = new FakeClock();
  let release: () => void = () => undefined;
  let slow = false;
  const fake = fakeEc2({ 'subnet-a': 200, 'subnet-b': 200 }, () => (slow ? new Promise<void>((r) => (release = r)) : Promise.resolve()));
  const addresses = new SubnetAddressCache({ ec2: fake.ec2, describeLimit: unlimited }, 3_000, clock);
  const deps = { ec2: fake.ec2, describeLimit: unlimited, addresses };
  expect(await selectSubnet(deps, 'private', POOL)).toBe('subnet-a');
  addresses.markFull('subnet-a');
  expect(await selectSubnet(deps, 'private', POOL)).toBe('subnet-b');
  await clock.advance(3_000);
  expect(await selectSubnet(deps, 'private', POOL)).toBe('subnet-a');

  await clock.advance(3_000);
  slow = true;
  const during = selectSubnet(deps, 'private', POOL);
  await clock.advance(10);
  addresses.markFull('subnet-a');
  release();
  expect(await during).toBe('subnet-b');
});

test('without a cache (no worker), every selection asks EC2', async () => {
  const fake = fakeEc2({ 'subnet-a': 200, 'subnet-b': 200 });
  await selectSubnet({ ec2: fake.ec2, describeLimit: unlimited }, 'private', POOL);
  await selectSubnet({ ec2: fake.ec2, describeLimit: unlimited }, 'private', POOL);
  expect(fake.describes()).toBe(2);
});

test('through the activities: a launch refused for addresses marks its subnet full for the next selection', async () => {
  let describes = 0;
  const ec2 = {
    send: async (command: unknown) => {
      if (command instanceof DescribeSubnetsCommand) {
        describes++;
        return { Subnets: POOL.map((SubnetId) => ({ SubnetId, AvailableIpAddressCount: 200 })) };
      }
      if (command instanceof RunInstancesCommand) throw awsError('InsufficientFreeAddressesInSubnet', 'There are not enough free addresses in subnet');
      throw new Error(`unexpected ${String(command)}`);
    },
  };
  const acts = createInstanceActivities({ aws: { ec2 } as unknown as AwsClients, bucket: 'b', temporal: {} as Client });
  const env = new MockActivityEnvironment({ attempt: 1 });
  const input = {
    shard: 's1',
    tenant: 'default',
    group: 'web',
    clusterId: 'c1',
    instanceId: 'web-0abc',
    groupWorkflowId: 'nstance:s1:group:default/web',
    launch: { kind: 'web', arch: 'arm64', instanceType: 'm7g.large', subnetPool: 'private', subnetIds: POOL, args: {}, vars: {}, images: {} },
    lifecycle: { registrationTimeoutMs: 60_000, drainTimeoutMs: 60_000, targetGroups: [] },
  } as InstanceWorkflowInput;
  expect(await env.run(acts.selectSubnet, 'private', POOL, [])).toBe('subnet-a');
  await expect(env.run(acts.launchInstance, input, { al2023: 'ami-1' }, 'subnet-a')).rejects.toMatchObject({ type: 'SubnetFull', nonRetryable: true });
  // Another instance's selection (it has no exclude list of its own) no longer picks subnet-a.
  expect(await env.run(acts.selectSubnet, 'private', POOL, [])).toBe('subnet-b');
  expect(describes).toBe(1);
});

test('the shared DescribeSubnets runs outside the activity that started it: its cancellation does not fail the others', async () => {
  const signals: Array<AbortSignal | undefined> = [];
  let release!: () => void;
  const answered = new Promise<void>((r) => (release = r));
  const ec2 = {
    send: async () => {
      signals.push(activitySignal());
      await answered;
      return { Subnets: POOL.map((SubnetId) => ({ SubnetId, AvailableIpAddressCount: 200 })) };
    },
  } as unknown as Pick<EC2Client, 'send'>;
  const addresses = new SubnetAddressCache({ ec2, describeLimit: unlimited });
  const deps = { ec2, describeLimit: unlimited, addresses };
  const first = new MockActivityEnvironment();
  const starter = first.run(() => selectSubnet(deps, 'private', POOL));
  const other = new MockActivityEnvironment().run(() => selectSubnet(deps, 'private', POOL));
  first.cancel();
  release();
  await expect(other).resolves.toBe('subnet-a');
  await starter.catch(() => undefined);
  expect(signals).toEqual([undefined]);
});
