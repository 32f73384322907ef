/**
 * Drains ask DescribeTargetHealth about their own targets (Targets), not the whole group, and the
 * worker's drains share one call per target group per poll.
 */
import {
  DeregisterTargetsCommand,
  RegisterTargetsCommand,
  DescribeTargetHealthCommand,
  type DescribeTargetHealthCommandInput,
  type ElasticLoadBalancingV2Client,
  type TargetHealthDescription,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import type { Client } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { AwsClients } from '../../adapters/aws/clients';
import { TargetDrainWatch } from '../../adapters/elbv2/drain-watch';
import { targetStates } from '../../adapters/elbv2/targets';
import { createLoadBalancerActivities } from '../../activities/load-balancer-activities';
import { FakeClock } from '../support/fake-clock';

const TG1 = { arn: 'arn:tg/one', port: 8080 };
const TG2 = { arn: 'arn:tg/two', port: 9090 };

/** ELBv2 as it answers asked-about targets: `draining` ids are draining, any other asked id "unused / Target.NotRegistered". */
function fakeElb(draining: Set<string>) {
  const calls: DescribeTargetHealthCommandInput[] = [];
  const elbv2 = {
    send: async (command: unknown) => {
      if (command instanceof DeregisterTargetsCommand) return {};
      if (!(command instanceof DescribeTargetHealthCommand)) throw new Error(`unexpected ${String(command)}`);
      calls.push(command.input);
      const asked = command.input.Targets ?? [];
      const TargetHealthDescriptions: TargetHealthDescription[] = asked.map((t) =>
        draining.has(`${command.input.TargetGroupArn}/${t.Id}`)
          ? { Target: t, TargetHealth: { State: 'draining', Reason: 'Target.DeregistrationInProgress' } }
          : { Target: t, TargetHealth: { State: 'unused', Reason: 'Target.NotRegistered' } },
      );
      return { TargetHealthDescriptions };
    },
  };
  return { elbv2: elbv2 as unknown as ElasticLoadBalancingV2Client, calls };
}

test('a target ELBv2 answers "unused / Target.NotRegistered" is not registered; draining is; other ports are not ours', async () => {
  const elbv2 = {
    send: async () => ({
      TargetHealthDescriptions: [
        { Target: { Id: 'i-gone', Port: 8080 }, TargetHealth: { State: 'unused', Reason: 'Target.NotRegistered' } },
        { Target: { Id: 'i-draining', Port: 8080 }, TargetHealth: { State: 'draining', Reason: 'Target.DeregistrationInProgress' } },
        { Target: { Id: 'i-stopped', Port: 8080 }, TargetHealth: { State: 'unused', Reason: 'Target.InvalidState' } },
        { Target: { Id: 'i-other', Port: 1234 }, TargetHealth: { State: 'healthy' } },
      ],
    }),
  } as unknown as ElasticLoadBalancingV2Client;
  const states = await targetStates(elbv2, TG1, ['i-gone', 'i-draining', 'i-stopped', 'i-other']);
  expect(Object.fromEntries(states)).toEqual({ 'i-draining': 'draining', 'i-stopped': 'unused' });
});

test('drains of one worker: one DescribeTargetHealth per target group per poll, naming only the draining targets', async () => {
  const clock = new FakeClock();
  const draining = new Set(['arn:tg/one/i-a', 'arn:tg/one/i-b', 'arn:tg/one/i-c', 'arn:tg/two/i-a']);
  const fake = fakeElb(draining);
  const watch = new TargetDrainWatch({ elbv2: fake.elbv2, pollMs: 1000, clock });
  const done: string[] = [];
  const drain = (tg: typeof TG1, id: string) => void watch.drained(tg, id).then(() => done.push(`${tg.arn}/${id}`));
  drain(TG1, 'i-a');
  drain(TG1, 'i-b');
  drain(TG1, 'i-c');
  drain(TG2, 'i-a');
  await clock.advance(2_500);
  expect(fake.calls).toHaveLength(6);
  for (const call of fake.calls) expect(call.Targets?.every((t) => t.Port === (call.TargetGroupArn === TG1.arn ? 8080 : 9090))).toBe(true);
  expect(fake.calls.slice(0, 2).map((c) => [c.TargetGroupArn, c.Targets?.map((t) => t.Id)])).toEqual([
    ['arn:tg/one', ['i-a', 'i-b', 'i-c']],
    ['arn:tg/two', ['i-a']],
  ]);
  draining.delete('arn:tg/one/i-b');
  draining.delete('arn:tg/two/i-a');
  await clock.advance(1_000);
  expect(done.sort()).toEqual(['arn:tg/one/i-b', 'arn:tg/two/i-a']);
  const before = fake.calls.length;
  await clock.advance(1_000);
  // The drained ones left: the next poll asks about the two still draining, in their one target group.
  expect(fake.calls.slice(before).map((c) => [c.TargetGroupArn, c.Targets?.map((t) => t.Id)])).toEqual([['arn:tg/one', ['i-a', 'i-c']]]);
  draining.clear();
  await clock.advance(1_000);
  expect(done).toHaveLength(4);
});

describe('drainTargets', () => {
  const activities = (draining: Set<string>) => {
    const fake = fakeElb(draining);
    return { acts: createLoadBalancerActivities({ aws: { elbv2: fake.elbv2 } as unknown as AwsClients, bucket: 'b', temporal: {} as Client, pollIntervalMs: 20 }), fake };
  };

  test('true once the target is gone from every target group, heartbeating what still drains', async () => {
    const draining = new Set(['arn:tg/one/i-a', 'arn:tg/two/i-a']);
    const { acts } = activities(draining);
    const env = new MockActivityEnvironment();
    const beats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => beats.push(d));
    const drained = env.run(acts.drainTargets, [TG1, TG2], 'i-a', 10_000);
    await new Promise((r) => setTimeout(r, 70));
    draining.delete('arn:tg/one/i-a');
    await new Promise((r) => setTimeout(r, 70));
    draining.clear();
    await expect(drained).resolves.toBe(true);
    expect(beats[0]).toEqual([TG1.arn, TG2.arn]);
    expect(beats).toContainEqual([TG2.arn]);
    expect(beats.at(-1)).toEqual([]);
  });

  test('false when the target still drains at the timeout', async () => {
    const { acts, fake } = activities(new Set(['arn:tg/one/i-a']));
    const started = Date.now();
    await expect(new MockActivityEnvironment().run(acts.drainTargets, [TG1], 'i-a', 150)).resolves.toBe(false);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    const calls = fake.calls.length;
    await new Promise((r) => setTimeout(r, 100));
    // The wait left the watch: no more polling for it.
    expect(fake.calls.length).toBe(calls);
  });
});

test('ensureTargets re-registers the missing targets, skipping one EC2 says is not running (the rest are still repaired)', async () => {
  const registered: string[] = [];
  const elbv2 = {
    send: async (command: unknown) => {
      if (command instanceof DescribeTargetHealthCommand) return { TargetHealthDescriptions: [{ Target: { Id: 'i-ok', Port: 8080 }, TargetHealth: { State: 'healthy' } }] };
      if (command instanceof RegisterTargetsCommand) {
        const id = command.input.Targets?.[0]?.Id as string;
        if (id === 'i-leaving') throw Object.assign(new Error(`The following targets are not in a running state and cannot be registered: '${id}'`), { name: 'InvalidTarget', $fault: 'client' });
        if (id === 'i-denied') throw Object.assign(new Error('not allowed'), { name: 'AccessDenied', $fault: 'client' });
        registered.push(id);
        return {};
      }
      throw new Error(`unexpected ${String(command)}`);
    },
  } as unknown as ElasticLoadBalancingV2Client;
  const acts = createLoadBalancerActivities({ aws: { elbv2 } as unknown as AwsClients, bucket: 'b', temporal: {} as Client });
  const env = new MockActivityEnvironment();
  await expect(env.run(acts.ensureTargets, [TG1], ['i-ok', 'i-leaving', 'i-lost'])).resolves.toEqual([`i-lost@${TG1.arn}`]);
  expect(registered).toEqual(['i-lost']);
  // Any other refusal still fails the step (the group shows it and retries later).
  await expect(env.run(acts.ensureTargets, [TG1], ['i-denied'])).rejects.toThrow(/RegisterTargets i-denied/);
});
