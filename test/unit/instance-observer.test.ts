/**
 * One view of EC2 per worker: every look-up and every wait of the process share batched, paginated
 * DescribeInstances calls. Driven on a fake clock against a fake EC2 that plays by EC2's rules
 * (at most 200 values per filter, MaxResults pages, unknown ids simply absent).
 */
import { DescribeInstancesCommand, type DescribeInstancesCommandInput, type EC2Client } from '@aws-sdk/client-ec2';
import type { Client } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { activitySignal } from '../../adapters/aws/cancellation';
import type { AwsClients } from '../../adapters/aws/clients';
import { classifyAwsError } from '../../adapters/aws/errors';
import { InstanceObserver } from '../../adapters/ec2/instance-observer';
import { createInstanceActivities } from '../../activities/instance-activities';
import { awsError } from '../support/faults';
import { FakeClock } from '../support/fake-clock';

const unlimited = { take: async () => undefined };

/** EC2 as DescribeInstances shows it: `world` holds the instances it shows, by id, with their state. */
function fakeEc2(world: Map<string, string>) {
  const calls: DescribeInstancesCommandInput[] = [];
  const signals: Array<AbortSignal | undefined> = [];
  let failNext: Array<() => Error> = [];
  const ec2 = {
    send: async (command: unknown) => {
      if (!(command instanceof DescribeInstancesCommand)) throw new Error(`unexpected ${String(command)}`);
      const input = command.input;
      calls.push(input);
      signals.push(activitySignal());
      const fail = failNext.shift();
      if (fail) throw fail();
      const ids = input.Filters?.find((f) => f.Name === 'instance-id')?.Values ?? [];
      if (input.InstanceIds) throw new Error('the batcher must filter by instance-id, never InstanceIds (which fails on one unknown id)');
      if (ids.length > 200) throw awsError('FilterLimitExceeded', 'The maximum number of filter values specified on a single call is 200');
      const shown = ids.filter((id) => world.has(id));
      const start = input.NextToken ? Number(input.NextToken) : 0;
      const page = shown.slice(start, start + (input.MaxResults ?? 1000));
      const next = start + page.length < shown.length ? String(start + page.length) : undefined;
      return { Reservations: page.map((id) => ({ Instances: [{ InstanceId: id, State: { Name: world.get(id) } }] })), NextToken: next };
    },
  };
  return { ec2: ec2 as unknown as EC2Client, calls, signals, failWith: (...errors: Array<() => Error>) => (failNext = errors) };
}

const ids = (n: number, prefix = 'i-') => Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(5, '0')}`);
const running = (seen: { State?: { Name?: string } } | undefined) => (seen?.State?.Name === 'running' ? true : undefined);

describe('waiters: one batched look per poll interval for all of them', () => {
  test('150 instances waiting to run: one DescribeInstances per poll, naming all of them', async () => {
    const clock = new FakeClock();
    const world = new Map(ids(150).map((id) => [id, 'pending']));
    const fake = fakeEc2(world);
    const observer = new InstanceObserver({ ec2: fake.ec2, describeLimit: unlimited, pollMs: 1000, clock });
    const done = ids(150).map((id) => observer.waitFor(id, running));
    await clock.advance(2_500);
    expect(fake.calls).toHaveLength(3);
    for (const id of ids(150)) world.set(id, 'running');
    await clock.advance(1_000);
    await expect(Promise.all(done)).resolves.toHaveLength(150);
    expect(fake.calls).toHaveLength(4);
    expect(fake.calls.every((c) => c.Filters?.[0].Values?.length === 150 && c.MaxResults === 1000)).toBe(true);
    // Nobody waits any more: the loop stops calling.
    await clock.advance(10_000);
    expect(fake.calls).toHaveLength(4);
    expect(observer.waiting).toBe(0);
  });

  test('450 waiters: chunks of at most 200 ids per filter (EC2 accepts no more), 3 calls per poll', async () => {
    const clock = new FakeClock();
    const world = new Map(ids(450).map((id) => [id, 'running']));
    const fake = fakeEc2(world);
    const observer = new InstanceObserver({ ec2: fake.ec2, describeLimit: unlimited, pollMs: 1000, clock });
    const done = Promise.all(ids(450).map((id) => observer.waitFor(id, running)));
    await clock.advance(500);
    await expect(done).resolves.toHaveLength(450);
    expect(fake.calls.map((c) => c.Filters?.[0].Values?.length).sort()).toEqual([200, 200, 50]);
  });

  test('an id EC2 does not show yet is not proof of absence: it is waited for until it shows', async () => {
    const clock = new FakeClock();
    const world = new Map<string, string>();
    const fake = fakeEc2(world);
    const observer = new InstanceObserver({ ec2: fake.ec2, describeLimit: unlimited, pollMs: 1000, clock });
    const looks: Array<string | undefined> = [];
    let result: unknown;
    void observer.waitFor('i-new', running, { onLook: (seen) => looks.push(seen?.State?.Name) }).then((r) => (result = r));
    await clock.advance(3_500);
    expect(result).toBeUndefined();
    expect(looks).toEqual([undefined, undefined, undefined, undefined]);
    world.set('i-new', 'running');
    await clock.advance(1_000);
    expect(result).toBe(true);
    expect(looks.at(-1)).toBe('running');
  });

  test('a cancelled waiter leaves at once with its reason; the others keep waiting', async () => {
    const clock = new FakeClock();
    const world = new Map([['i-a', 'pending'], ['i-b', 'pending']]);
    const fake = fakeEc2(world);
    const observer = new InstanceObserver({ ec2: fake.ec2, describeLimit: unlimited, pollMs: 1000, clock });
    const stop = new AbortController();
    const a = observer.waitFor('i-a', running, { signal: stop.signal });
    const b = observer.waitFor('i-b', running);
    await clock.advance(1_500);
    stop.abort(new CancelledFailure('CANCELLED'));
    await expect(a).rejects.toBeInstanceOf(CancelledFailure);
    world.set('i-b', 'running');
    await clock.advance(1_000);
    await expect(b).resolves.toBe(true);
    expect(fake.calls.at(-1)?.Filters?.[0].Values).toEqual(['i-b']);
  });

  test('a failed look is sat through (throttling); three in a row fail the waiters; a rejected request fails them at once', async () => {
    const clock = new FakeClock();
    const world = new Map([['i-a', 'running']]);
    const fake = fakeEc2(world);
    const observer = new InstanceObserver({ ec2: fake.ec2, describeLimit: unlimited, pollMs: 1000, clock });
    const throttled = () => awsError('RequestLimitExceeded', 'Request limit exceeded.');
    fake.failWith(throttled, throttled);
    const survives = observer.waitFor('i-a', running);
    await clock.advance(2_500);
    await expect(survives).resolves.toBe(true);

    fake.failWith(throttled, throttled, throttled);
    const fails = observer.waitFor('i-a', running);
    const outcome = fails.catch((e: unknown) => e);
    await clock.advance(5_000);
    expect(await outcome).toMatchObject({ type: 'Aws.RequestLimitExceeded' });

    fake.failWith(() => awsError('UnauthorizedOperation', 'You are not authorized to perform this operation.'));
    const rejected = observer.waitFor('i-a', running).catch((e: unknown) => e);
    await clock.advance(1_500);
    expect(await rejected).toMatchObject({ type: 'AwsRequestRejected', nonRetryable: true });
  });
});

describe('look-ups: batched within a short window, paginated', () => {
  test('look-ups made within the idle window share one call; one made after it gets its own', async () => {
    const clock = new FakeClock();
    const world = new Map(ids(30).map((id) => [id, 'running']));
    const fake = fakeEc2(world);
    const observer = new InstanceObserver({ ec2: fake.ec2, describeLimit: unlimited, pollMs: 1000, clock });
    const first = [observer.observe(ids(30).slice(0, 10)), observer.observe(ids(30).slice(10, 20))];
    await clock.advance(10);
    first.push(observer.observe(ids(30).slice(20)));
    await clock.advance(100);
    const answers = await Promise.all(first);
    expect(fake.calls).toHaveLength(1);
    expect(answers.every((a) => a.size === 30)).toBe(true);
    const later = observer.observe(['i-00001']);
    await clock.advance(100);
    expect((await later).has('i-00001')).toBe(true);
    expect(fake.calls).toHaveLength(2);
  });

  test('a steady stream of look-ups is cut at the maximum window', async () => {
    const clock = new FakeClock();
    const fake = fakeEc2(new Map());
    const observer = new InstanceObserver({ ec2: fake.ec2, describeLimit: unlimited, pollMs: 1000, clock, batching: { idleMs: 25, maxWindowMs: 250 } });
    for (let t = 0; t < 1_000; t += 20) {
      void observer.observe([`i-${t}`]);
      await clock.advance(20);
    }
    await clock.advance(100);
    // 1 s of look-ups 20 ms apart, never idle for 25 ms: windows of 250 ms.
    expect(fake.calls.length).toBeGreaterThanOrEqual(4);
    expect(fake.calls.length).toBeLessThanOrEqual(5);
    expect(observer.batcher.stats.requests).toBe(50);
  });

  test('answers of more instances than a page are followed page by page (NextToken)', async () => {
    const clock = new FakeClock();
    const world = new Map(ids(12).map((id) => [id, 'running']));
    const fake = fakeEc2(world);
    const observer = new InstanceObserver({ ec2: fake.ec2, describeLimit: unlimited, pollMs: 1000, clock, batching: { pageSize: 5 } });
    const seen = observer.observe([...ids(12), 'i-unknown']);
    await clock.advance(100);
    const answer = await seen;
    expect([...answer.keys()].sort()).toEqual(ids(12));
    expect(fake.calls.map((c) => [c.MaxResults, c.NextToken])).toEqual([
      [5, undefined],
      [5, '5'],
      [5, '10'],
    ]);
  });

  test('each page is a request against the Describe bucket', async () => {
    const clock = new FakeClock();
    const fake = fakeEc2(new Map(ids(12).map((id) => [id, 'running'])));
    let taken = 0;
    const observer = new InstanceObserver({ ec2: fake.ec2, describeLimit: { take: async () => void taken++ }, pollMs: 1000, clock, batching: { pageSize: 5 } });
    const seen = observer.observe(ids(12));
    await clock.advance(100);
    await seen;
    expect(taken).toBe(3);
  });
});

describe('the instance activities on the observer', () => {
  function activities(world: Map<string, string>, clock: FakeClock) {
    const fake = fakeEc2(world);
    const terminated: string[] = [];
    const ec2 = {
      send: async (command: unknown) => {
        if ((command as { constructor: { name: string } }).constructor.name === 'TerminateInstancesCommand') {
          const id = (command as { input: { InstanceIds: string[] } }).input.InstanceIds[0];
          terminated.push(id);
          world.set(id, 'shutting-down');
          return {};
        }
        return fake.ec2.send(command as DescribeInstancesCommand);
      },
    };
    const instanceObserver = new InstanceObserver({ ec2: ec2 as unknown as EC2Client, describeLimit: unlimited, pollMs: 1000, clock });
    const acts = createInstanceActivities({ aws: { ec2 } as unknown as AwsClients, bucket: 'b', temporal: {} as Client, instanceObserver });
    return { acts, fake, terminated };
  }

  test('the shared call runs outside any activity, so no waiter’s cancellation aborts it; the cancelled waiter ends as cancelled', async () => {
    const clock = new FakeClock();
    const world = new Map([['i-a', 'pending'], ['i-b', 'pending']]);
    const { acts, fake } = activities(world, clock);
    const envA = new MockActivityEnvironment();
    const envB = new MockActivityEnvironment();
    const a = envA.run(acts.awaitInstanceState, 'i-a', 'running' as const);
    const b = envB.run(acts.awaitInstanceState, 'i-b', 'running' as const);
    await clock.advance(1_500);
    envA.cancel();
    await expect(a).rejects.toBeInstanceOf(CancelledFailure);
    world.set('i-b', 'running');
    await clock.advance(1_000);
    await expect(b).resolves.toMatchObject({ ec2InstanceId: 'i-b', state: 'running' });
    expect(fake.signals.every((s) => s === undefined)).toBe(true);
  });

  test('awaitInstanceState: heartbeats every look; an instance that stops before running is lost (non-retryable)', async () => {
    const clock = new FakeClock();
    const world = new Map([['i-a', 'pending']]);
    const { acts } = activities(world, clock);
    const env = new MockActivityEnvironment();
    const beats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => beats.push(d));
    const waiting = env.run(acts.awaitInstanceState, 'i-a', 'running' as const).catch((e: unknown) => e);
    await clock.advance(1_500);
    world.set('i-a', 'stopped');
    await clock.advance(1_000);
    const err = await waiting;
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: 'InstanceLost', nonRetryable: true });
    expect(beats).toEqual(['pending', 'pending', 'stopped']);
  });

  test('terminateInstance waits, batched, until EC2 shows it terminated; observeInstances says "missing" for what EC2 does not show', async () => {
    const clock = new FakeClock();
    const world = new Map([['i-a', 'running'], ['i-b', 'running']]);
    const { acts, fake, terminated } = activities(world, clock);
    const env = new MockActivityEnvironment();
    let done = false;
    const terminating = env.run(acts.terminateInstance, 'i-a').then(() => (done = true));
    await clock.advance(2_500);
    expect(done).toBe(false);
    world.set('i-a', 'terminated');
    await clock.advance(1_000);
    await terminating;
    expect(terminated).toEqual(['i-a']);
    const observing = env.run(acts.observeInstances, ['i-a', 'i-b', 'i-gone']);
    await clock.advance(100);
    expect(await observing).toEqual({ 'i-a': 'terminated', 'i-b': 'running', 'i-gone': 'missing' });
    expect(fake.calls.every((c) => c.Filters?.[0].Name === 'instance-id')).toBe(true);
  });
});

test('classification leaves an activity cancellation as it is', () => {
  const cancelled = new CancelledFailure('CANCELLED');
  expect(classifyAwsError(cancelled, 'DescribeInstances')).toBe(cancelled);
});
