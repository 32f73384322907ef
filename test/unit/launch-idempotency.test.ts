/**
 * A launch retried after a crash must send EC2 exactly the request it sent first
 * (same ClientToken, same parameters, UserData and its nonce included), or real
 * EC2 answers IdempotentParameterMismatch. Also: the FaultLayer's emulation of
 * that rule, and the subnet pool's "no subnet left" failure.
 */
import { generateKeyPairSync } from 'node:crypto';
import { DescribeInstancesCommand, DescribeSubnetsCommand, EC2Client, RunInstancesCommand, type RunInstancesCommandInput } from '@aws-sdk/client-ec2';
import { ApplicationFailure } from '@temporalio/common';
import type { Client } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { ActivityDeps, LaunchAttempt } from '../../activities/deps';
import { mergeTagSpecifications } from '../../adapters/ec2/instances';
import type { AwsClients } from '../../adapters/aws/clients';
import { TokenBucket } from '../../adapters/aws/token-bucket';
import { selectSubnet } from '../../adapters/ec2/subnets';
import { clientTokenFor, createInstanceActivities } from '../../activities/instance-activities';
import { mintLaunchNonce } from '../../adapters/pki/nonce';
import type { InstanceWorkflowInput } from '../../common/types';
import { awsError, FaultLayer } from '../support/faults';

const SCHEDULED = Date.parse('2026-01-01T00:00:00Z');

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
    subnetPool: 'private',
    subnetIds: ['subnet-a', 'subnet-b'],
    args: { ImageId: '{{ .Image.al2023 }}' },
    vars: {},
    userdata: '#!/bin/bash\nagent --nonce {{ .Nonce }}\n',
    images: {},
  },
  lifecycle: { registrationTimeoutMs: 5 * 60_000, drainTimeoutMs: 60_000, targetGroups: [] },
};

/** An EC2 client that records RunInstances and never shows an instance to Describe (eventual consistency). */
function fakeEc2() {
  const runs: RunInstancesCommandInput[] = [];
  const ec2 = {
    send: async (command: unknown) => {
      if (command instanceof DescribeInstancesCommand) return { Reservations: [] };
      if (command instanceof RunInstancesCommand) {
        runs.push(command.input);
        return { Instances: [{ InstanceId: 'i-1', State: { Name: 'pending' } }] };
      }
      throw new Error(`unexpected ${String(command)}`);
    },
  };
  return { ec2, runs };
}

function activities(ec2: unknown, issued: LaunchAttempt[]) {
  const key = generateKeyPairSync('ed25519').privateKey;
  const deps = {
    aws: { ec2 } as unknown as AwsClients,
    bucket: 'b',
    temporal: {} as Client,
    // The shape of the real issuer: the nonce depends on the launch only.
    issueRegistrationNonce: async (i: InstanceWorkflowInput, launch: LaunchAttempt) => {
      issued.push(launch);
      const subject = { cluster: i.clusterId, shard: i.shard, tenant: i.tenant, group: i.group, instanceId: i.instanceId };
      return { nonce: mintLaunchNonce(key, subject, { ...launch, ttlMs: 60_000 }).token, caCertificate: '' };
    },
  } satisfies ActivityDeps;
  return createInstanceActivities(deps);
}

describe('every attempt of one launch renders the same RunInstances request', () => {
  test('two attempts of one scheduled launch: identical parameters, nonce and ClientToken', async () => {
    const { ec2, runs } = fakeEc2();
    const issued: LaunchAttempt[] = [];
    const acts = activities(ec2, issued);
    // Attempt 2 is scheduled later, but scheduledTimestampMs is the first attempt's on every retry.
    for (const attempt of [1, 2]) {
      const env = new MockActivityEnvironment({ attempt, scheduledTimestampMs: SCHEDULED, currentAttemptScheduledTimestampMs: SCHEDULED + attempt * 1000 });
      await env.run(acts.launchInstance, input, input.imageIds ?? {}, 'subnet-a');
    }
    expect(runs).toHaveLength(2);
    expect(runs[1]).toEqual(runs[0]);
    expect(Buffer.from(runs[0].UserData ?? '', 'base64').toString()).toMatch(/--nonce ey[\w-]+\.[\w-]+\.[\w-]+/);
    expect(issued).toEqual([
      { workflowId: 'nstance:s1:instance:web-0abc', issuedAtMs: SCHEDULED },
      { workflowId: 'nstance:s1:instance:web-0abc', issuedAtMs: SCHEDULED },
    ]);
  });

  test('another subnet or another scheduled launch gets another ClientToken', () => {
    const launch = { workflowId: 'nstance:s1:instance:web-0abc', issuedAtMs: SCHEDULED };
    const token = clientTokenFor(launch, 'subnet-a');
    expect(clientTokenFor({ ...launch }, 'subnet-a')).toBe(token);
    expect(token).toMatch(/^[0-9a-f]{64}$/);
    expect(clientTokenFor(launch, 'subnet-b')).not.toBe(token);
    expect(clientTokenFor({ ...launch, issuedAtMs: SCHEDULED + 1 }, 'subnet-a')).not.toBe(token);
    expect(clientTokenFor({ ...launch, workflowId: 'nstance:s1:instance:web-0abd' }, 'subnet-a')).not.toBe(token);
  });
});

describe('FaultLayer.emulateClientTokens behaves as EC2 does', () => {
  /** A real EC2 client whose requests stop before the network: `answer` plays EC2. */
  function client(answer: (input: RunInstancesCommandInput) => object) {
    const ec2 = new EC2Client({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
    let reached = 0;
    ec2.middlewareStack.add(
      (() => async (args: { input: RunInstancesCommandInput }) => {
        reached++;
        return { output: answer(args.input), response: {} };
      }) as never,
      { step: 'build', name: 'fakeEc2' },
    );
    const faults = new FaultLayer().attach(ec2).emulateClientTokens();
    return { ec2, faults, reached: () => reached };
  }
  const request: RunInstancesCommandInput = { ClientToken: 't1', ImageId: 'ami-1', MinCount: 1, MaxCount: 1, SubnetId: 'subnet-a', UserData: 'AAAA' };

  test('same token, same parameters (in any key order): the first launch again, EC2 reached once', async () => {
    let n = 0;
    const t = client(() => ({ Instances: [{ InstanceId: `i-${++n}` }] }));
    const first = await t.ec2.send(new RunInstancesCommand(request));
    const reordered = Object.fromEntries(Object.entries(request).reverse()) as RunInstancesCommandInput;
    const again = await t.ec2.send(new RunInstancesCommand(reordered));
    expect(again.Instances?.[0]?.InstanceId).toBe(first.Instances?.[0]?.InstanceId);
    expect(t.reached()).toBe(1);
  });

  test('same token, other parameters: IdempotentParameterMismatch, recorded, nothing launched', async () => {
    const t = client(() => ({ Instances: [{ InstanceId: 'i-1' }] }));
    await t.ec2.send(new RunInstancesCommand(request));
    await expect(t.ec2.send(new RunInstancesCommand({ ...request, UserData: 'BBBB' }))).rejects.toMatchObject({ name: 'IdempotentParameterMismatch' });
    expect(t.reached()).toBe(1);
    expect(t.faults.callsOf('RunInstances').map((c) => c.error)).toEqual([undefined, 'IdempotentParameterMismatch']);
  });

  test('a rejected launch does not bind its token', async () => {
    const t = client(() => ({ Instances: [{ InstanceId: 'i-1' }] }));
    t.faults.failBefore('RunInstances', () => awsError('InsufficientInstanceCapacity'));
    await expect(t.ec2.send(new RunInstancesCommand(request))).rejects.toMatchObject({ name: 'InsufficientInstanceCapacity' });
    const out = await t.ec2.send(new RunInstancesCommand({ ...request, UserData: 'BBBB' }));
    expect(out.Instances?.[0]?.InstanceId).toBe('i-1');
    expect(t.faults.callsOf('RunInstances').map((c) => c.error)).toEqual(['InsufficientInstanceCapacity', undefined]);
  });
});

describe('subnet pool with no subnet left', () => {
  const deps = (free: Record<string, number>) => ({
    ec2: { send: async (c: unknown) => (c instanceof DescribeSubnetsCommand ? { Subnets: Object.entries(free).map(([SubnetId, n]) => ({ SubnetId, AvailableIpAddressCount: n })) } : {}) } as unknown as EC2Client,
    describeLimit: new TokenBucket({ capacity: 100, refillPerSecond: 100 }),
  });

  test('the first subnet with room, skipping those a launch found full', async () => {
    expect(await selectSubnet(deps({ 'subnet-a': 200, 'subnet-b': 200 }), 'private', ['subnet-a', 'subnet-b'], ['subnet-a'])).toBe('subnet-b');
    expect(await selectSubnet(deps({ 'subnet-a': 5, 'subnet-b': 200 }), 'private', ['subnet-a', 'subnet-b'])).toBe('subnet-b');
  });

  test('fails at once (non-retryable: the workflow backs off), naming the pool and why each subnet is out', async () => {
    const err = await selectSubnet(deps({ 'subnet-a': 200, 'subnet-b': 3 }), 'private', ['subnet-a', 'subnet-b'], ['subnet-a']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: 'SubnetPoolExhausted', nonRetryable: true });
    expect((err as Error).message).toMatch(/subnet pool "private" has no subnet left/);
    expect((err as Error).message).toMatch(/subnet-a: full at launch .*subnet-b: 3 free/);
  });
});

describe('tags', () => {
  test('nstance:* tags always win; a Name the config sets is kept, otherwise Name is the instance id', () => {
    const ours = [{ ResourceType: 'instance' as const, Tags: [{ Key: 'nstance:instance-id', Value: 'web-1' }, { Key: 'Name', Value: 'web-1' }] }];
    const configured = [{ ResourceType: 'instance' as const, Tags: [{ Key: 'Name', Value: 'api-web-1' }, { Key: 'nstance:instance-id', Value: 'forged' }, { Key: 'team', Value: 'a' }] }];
    const merged = mergeTagSpecifications(configured, ours)[0].Tags ?? [];
    expect(Object.fromEntries(merged.map((t) => [t.Key, t.Value]))).toEqual({ Name: 'api-web-1', 'nstance:instance-id': 'web-1', team: 'a' });
    const unnamed = mergeTagSpecifications([], ours)[0].Tags ?? [];
    expect(unnamed.find((t) => t.Key === 'Name')?.Value).toBe('web-1');
  });
});
