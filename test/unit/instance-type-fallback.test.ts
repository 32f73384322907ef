/**
 * Instance-type fallback in the launch activity: on InsufficientInstanceCapacity the next type of the list,
 * a refused type skipped by every launch of the worker for a cool-down (not retried in a loop), and, once no
 * type has capacity in the subnet, a failure that sends the workflow to the pool's next subnet.
 */
import { DescribeInstancesCommand, RunInstancesCommand, type RunInstancesCommandInput } from '@aws-sdk/client-ec2';
import { ApplicationFailure } from '@temporalio/common';
import type { Client } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { ActivityDeps } from '../../activities/deps';
import { clientTokenFor, createInstanceActivities } from '../../activities/instance-activities';
import type { AwsClients } from '../../adapters/aws/clients';
import { CapacityCooldown } from '../../adapters/ec2/capacity-cooldown';
import type { InstanceWorkflowInput, LaunchedInstance } from '../../common/types';
import { awsError } from '../support/faults';
import { FakeClock } from '../support/fake-clock';

const input: InstanceWorkflowInput = {
  shard: 's1',
  tenant: 'default',
  group: 'web',
  clusterId: 'c1',
  instanceId: 'web-0abc',
  groupWorkflowId: 'nstance:s1:group:default/web',
  imageIds: { al2023: 'ami-1' },
  launch: {
    kind: 'web',
    arch: 'arm64',
    instanceType: 'm7g.large',
    instanceTypes: ['m7g.large', 'm6g.large', 'c7g.large'],
    subnetPool: 'private',
    subnetIds: ['subnet-a', 'subnet-b'],
    args: { ImageId: '{{ .Image.al2023 }}' },
    vars: {},
    userdata: '#!/bin/bash\necho {{ .Instance.Type }}\n',
    images: {},
  },
};

/** EC2 with no capacity for the types in `short` (per subnet, "type@subnet"). */
function fakeEc2(short: Set<string>) {
  const runs: RunInstancesCommandInput[] = [];
  const ec2 = {
    send: async (command: unknown) => {
      if (command instanceof DescribeInstancesCommand) return { Reservations: [] };
      if (command instanceof RunInstancesCommand) {
        runs.push(command.input);
        const { InstanceType, SubnetId } = command.input;
        if (short.has(`${InstanceType}@${SubnetId}`)) throw awsError('InsufficientInstanceCapacity', `We currently do not have sufficient ${InstanceType} capacity`);
        return { Instances: [{ InstanceId: `i-${runs.length}`, InstanceType, SubnetId, State: { Name: 'pending' } }] };
      }
      throw new Error(`unexpected ${String(command)}`);
    },
  };
  return { ec2, runs };
}

function setup(short: string[]) {
  const clock = new FakeClock(1_000_000);
  const cooldown = new CapacityCooldown(60_000, clock);
  const fake = fakeEc2(new Set(short));
  const deps = { aws: { ec2: fake.ec2 } as unknown as AwsClients, bucket: 'b', temporal: {} as Client, capacityCooldown: cooldown } satisfies ActivityDeps;
  const acts = createInstanceActivities(deps);
  const launch = (subnet: string, i = input): Promise<LaunchedInstance> => new MockActivityEnvironment({ attempt: 1, scheduledTimestampMs: 5 }).run(acts.launchInstance, i, i.imageIds ?? {}, subnet);
  return { clock, cooldown, runs: fake.runs, launch };
}

describe('instance-type fallback', () => {
  test('ICE on the preferred type: the next type, recorded as the launched type, with its own ClientToken and userdata', async () => {
    const t = setup(['m7g.large@subnet-a']);
    const launched = await t.launch('subnet-a');
    expect(launched.instanceType).toBe('m6g.large');
    expect(t.runs.map((r) => r.InstanceType)).toEqual(['m7g.large', 'm6g.large']);
    expect(t.runs[1].ClientToken).not.toBe(t.runs[0].ClientToken);
    // The preferred type keeps the token it always had.
    expect(t.runs[0].ClientToken).toBe(clientTokenFor({ workflowId: 'nstance:s1:instance:web-0abc', issuedAtMs: 5 }, 'subnet-a'));
    expect(Buffer.from(t.runs[1].UserData ?? '', 'base64').toString()).toContain('echo m6g.large');
  });

  test('a refused type is skipped by later launches during the cool-down, and tried first again after it', async () => {
    const t = setup(['m7g.large@subnet-a']);
    await t.launch('subnet-a');
    t.runs.length = 0;
    for (let i = 0; i < 5; i++) await t.launch('subnet-a', { ...input, instanceId: `web-${i}` });
    // Five launches, five calls: none re-asked for m7g.large.
    expect(t.runs.map((r) => r.InstanceType)).toEqual(Array(5).fill('m6g.large'));
    // Only in subnet-a: subnet-b still tries the preferred type.
    t.runs.length = 0;
    await t.launch('subnet-b');
    expect(t.runs.map((r) => r.InstanceType)).toEqual(['m7g.large']);
    await t.clock.advance(60_001);
    t.runs.length = 0;
    await t.launch('subnet-a');
    expect(t.runs.map((r) => r.InstanceType)).toEqual(['m7g.large', 'm6g.large']);
    expect(t.cooldown.size).toBe(1);
  });

  test('no type has capacity in the subnet: a non-retryable InsufficientCapacity naming the types; then no call at all until the cool-down ends', async () => {
    const t = setup(['m7g.large@subnet-a', 'm6g.large@subnet-a', 'c7g.large@subnet-a']);
    const err = await t.launch('subnet-a').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: 'InsufficientCapacity', nonRetryable: true });
    expect((err as Error).message).toMatch(/no capacity for web-0abc in subnet-a for any of m7g\.large, m6g\.large, c7g\.large \(refused now: m7g\.large, m6g\.large, c7g\.large\)/);
    t.runs.length = 0;
    const again = await t.launch('subnet-a').catch((e: unknown) => e);
    expect((again as Error).message).toMatch(/cooling down after a refusal: m7g\.large, m6g\.large, c7g\.large/);
    expect(t.runs).toHaveLength(0);
  });

  test('a single instance_type keeps the old path: no cool-down, the capacity error as before', async () => {
    const t = setup(['m7g.large@subnet-a']);
    const single = { ...input, launch: { ...input.launch, instanceTypes: undefined } };
    for (let i = 0; i < 2; i++) await expect(t.launch('subnet-a', single)).rejects.toMatchObject({ type: 'InsufficientCapacity' });
    expect(t.runs).toHaveLength(2);
    expect(t.cooldown.size).toBe(0);
  });
});
