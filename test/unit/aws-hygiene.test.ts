/**
 * Activity hygiene: AWS requests cancelled with their activity, errors classified by whether a retry
 * can ever succeed, capacity shortages handed to the workflow's slow backoff, and the launch's tag
 * look-up made only where there can be something to find (a retried attempt).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DescribeInstancesCommand, DescribeVpcsCommand, EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { cancellableInActivities } from '../../adapters/aws/cancellation';
import type { AwsClients } from '../../adapters/aws/clients';
import { classifyAwsError } from '../../adapters/aws/errors';
import { InstanceObserver } from '../../adapters/ec2/instance-observer';
import { createInstanceActivities } from '../../activities/instance-activities';
import type { InstanceWorkflowInput } from '../../common/types';
import { awsError } from '../support/faults';

describe('errors a retry can never fix are non-retryable', () => {
  test.each(['IdempotentParameterMismatch', 'InvalidSubnetID.NotFound', 'InvalidGroup.NotFound', 'TargetGroupNotFound', 'TargetGroupNotFoundException'])('%s', (code) => {
    const failure = classifyAwsError(awsError(code, `${code}: as AWS says it`), 'doing something') as ApplicationFailure;
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure).toMatchObject({ type: 'AwsRequestRejected', nonRetryable: true });
    expect(failure.message).toBe(`doing something: ${code}: ${code}: as AWS says it`);
  });

  test.each(['RequestLimitExceeded', 'InternalError', 'Unavailable', 'InvalidInstanceID.NotFound'])('%s stays retryable', (code) => {
    expect(classifyAwsError(awsError(code), 'doing something')).toMatchObject({ type: `Aws.${code}`, nonRetryable: false });
  });
});

const input = {
  shard: 's1',
  tenant: 'default',
  group: 'web',
  clusterId: 'c1',
  instanceId: 'web-0abc',
  groupWorkflowId: 'nstance:s1:group:default/web',
  launch: { kind: 'web', arch: 'arm64', instanceType: 'm7g.large', subnetPool: 'private', subnetIds: ['subnet-a'], args: {}, vars: {}, images: {} },
  lifecycle: { registrationTimeoutMs: 60_000, drainTimeoutMs: 60_000, targetGroups: [] },
} as InstanceWorkflowInput;

/** EC2 that records what it is asked and answers RunInstances with `run`. */
function fakeEc2(run: () => object) {
  const asked: string[] = [];
  const ec2 = {
    send: async (command: unknown) => {
      asked.push((command as object).constructor.name.replace(/Command$/, ''));
      if (command instanceof DescribeInstancesCommand) return { Reservations: [] };
      if (command instanceof RunInstancesCommand) return run();
      throw new Error(`unexpected ${String(command)}`);
    },
  };
  return { acts: createInstanceActivities({ aws: { ec2 } as unknown as AwsClients, bucket: 'b', temporal: {} as Client }), asked };
}

describe('launch', () => {
  test.each(['InsufficientInstanceCapacity', 'InstanceLimitExceeded', 'VcpuLimitExceeded'])('%s is a capacity shortage: InsufficientCapacity, non-retryable, naming the cause', async (code) => {
    const { acts } = fakeEc2(() => {
      throw awsError(code, `${code} as EC2 words it`);
    });
    const err = await new MockActivityEnvironment().run(acts.launchInstance, input, { al2023: 'ami-1' }, 'subnet-a').catch((e: unknown) => e);
    expect(err).toMatchObject({ type: 'InsufficientCapacity', nonRetryable: true });
    expect((err as Error).message).toBe(`${code}: no m7g.large capacity for web-0abc in subnet-a: ${code} as EC2 words it`);
  });

  test('the first attempt launches without looking up by tag; a retried attempt looks first', async () => {
    const { acts, asked } = fakeEc2(() => ({ Instances: [{ InstanceId: 'i-1', State: { Name: 'pending' } }] }));
    await new MockActivityEnvironment({ attempt: 1 }).run(acts.launchInstance, input, { al2023: 'ami-1' }, 'subnet-a');
    expect(asked).toEqual(['RunInstances']);
    asked.length = 0;
    await new MockActivityEnvironment({ attempt: 2 }).run(acts.launchInstance, input, { al2023: 'ami-1' }, 'subnet-a');
    expect(asked).toEqual(['DescribeInstances', 'RunInstances']);
  });
});

describe('AWS requests are cancelled with their activity', () => {
  let server: Server;
  let endpoint: string;
  let opened = 0;
  let closed = 0;
  beforeAll(async () => {
    // An endpoint that never answers: only cancellation can end a request to it.
    server = createServer((req) => {
      opened++;
      req.socket.on('close', () => closed++);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const client = () =>
    cancellableInActivities(new EC2Client({ region: 'us-east-1', endpoint, maxAttempts: 1, credentials: { accessKeyId: 'x', secretAccessKey: 'y' } }));

  test('a request in flight is aborted when the activity is cancelled, and fails as the cancellation', async () => {
    const ec2 = client();
    const env = new MockActivityEnvironment();
    const started = Date.now();
    const call = env.run(async () => ec2.send(new DescribeVpcsCommand({})));
    while (opened === 0) await new Promise((r) => setTimeout(r, 10));
    env.cancel();
    await expect(call).rejects.toBeInstanceOf(CancelledFailure);
    expect(Date.now() - started).toBeLessThan(5_000);
    while (closed === 0) await new Promise((r) => setTimeout(r, 10));
    expect(closed).toBe(opened);
    ec2.destroy();
  });

  test('outside an activity, and with a signal of the caller’s own, requests go through untouched', async () => {
    const seen: unknown[] = [];
    const sender = cancellableInActivities({ send: async (_command: unknown, options?: unknown) => void seen.push(options) });
    await sender.send({});
    const own = new AbortController().signal;
    await new MockActivityEnvironment().run(async () => {
      await sender.send({}, { abortSignal: own });
      await sender.send({});
    });
    expect(seen[0]).toBeUndefined();
    expect((seen[1] as { abortSignal: AbortSignal }).abortSignal).toBe(own);
    expect((seen[2] as { abortSignal: AbortSignal }).abortSignal).toBeDefined();
    expect((seen[2] as { abortSignal: AbortSignal }).abortSignal).not.toBe(own);
  });

  test('the wrapped client is the same client: middleware and config are shared', () => {
    const raw = new EC2Client({ region: 'us-east-1' });
    const wrapped = cancellableInActivities(raw);
    expect(wrapped.middlewareStack).toBe(raw.middlewareStack);
    expect(wrapped).toBeInstanceOf(EC2Client);
    raw.destroy();
  });

  test('a batched look that hangs is given up at its deadline, and the waiters are told', async () => {
    const ec2 = client();
    const observer = new InstanceObserver({ ec2, describeLimit: { take: async () => undefined }, pollMs: 1000, batching: { requestTimeoutMs: 200 } });
    const started = Date.now();
    const look = observer.observe(['i-1']).catch((e: unknown) => e);
    expect(await look).toMatchObject({ type: 'Aws.RequestTimeout', message: 'DescribeInstances (batched: 1 instances): no answer within 200 ms' });
    expect(Date.now() - started).toBeLessThan(3_000);
    ec2.destroy();
  });

  test('a signal already aborted fails at once', async () => {
    const ec2 = client();
    const env = new MockActivityEnvironment();
    const call = env.run(async () => {
      env.cancel();
      await new Promise((r) => setImmediate(r));
      expect(Context.current().cancellationSignal.aborted).toBe(true);
      return ec2.send(new DescribeVpcsCommand({}));
    });
    await expect(call).rejects.toBeInstanceOf(CancelledFailure);
    ec2.destroy();
  });
});
