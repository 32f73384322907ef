/**
 * The worker's EC2 layer at (modest) fleet scale, on the real dev server and moto: two workers of one
 * shard split EC2's buckets between them, and a 100-instance scale-up and scale-down go through the
 * batched paths (DescribeInstances per instance launched, DescribeSubnets per launch).
 */
import { ShardEc2Limits } from '../../adapters/aws/shard-limits';
import { targetStates } from '../../adapters/elbv2/targets';
import { waitForConvergence } from '../../client/ops/status';
import { eventually } from '../support/emulator';
import { useShard } from '../support/shard-fixture';

const fx = useShard('ec2view', { registrar: true });
const limits = [new ShardEc2Limits({ joinGraceMs: 2_000 }), new ShardEc2Limits({ joinGraceMs: 2_000 })];

beforeAll(async () => {
  // The production poll interval (the harness's default is a quicker 250 ms), counted every second.
  for (const ec2Limits of limits) await fx.h.startWorker({ pollIntervalMs: 1000 }, { ec2Limits, shardWorkersRefreshMs: 1_000 });
});

test('two workers of one shard count each other (the task queue pollers) and each holds half of every bucket', async () => {
  await eventually('both workers count two', async () => (limits.every((l) => l.workers === 2) ? true : undefined), 30_000);
  for (const l of limits) {
    expect(l.runInstances.capacity).toBe(500);
    expect(l.runInstances.refillPerSecond).toBe(1);
    expect(l.describe.capacity).toBe(50);
    expect(l.terminate.refillPerSecond).toBe(10);
  }
});

test('100 instances up and down: at most 3 DescribeInstances per instance launched, one DescribeSubnets per many launches', async () => {
  const count = (command: string) => fx.faults.callsOf(command).length;
  const before = { describes: count('DescribeInstances'), subnets: count('DescribeSubnets'), runs: count('RunInstances') };
  const started = Date.now();
  await fx.apply({ size: 100, reconcileInterval: '3s' });
  await waitForConvergence(fx.client, fx.ref, { timeoutMs: 400_000, size: 100, pollMs: 1000 });
  const up = { ms: Date.now() - started, describes: count('DescribeInstances') - before.describes, subnets: count('DescribeSubnets') - before.subnets };
  const launched = fx.faults.callsOf('RunInstances').slice(before.runs).filter((c) => c.outcome === 'ok').length;
  expect(launched).toBe(100);

  await fx.apply({ size: 0, reconcileInterval: '3s' });
  await waitForConvergence(fx.client, fx.ref, { timeoutMs: 400_000, size: 0, pollMs: 1000 });
  const cycle = { ms: Date.now() - started, describes: count('DescribeInstances') - before.describes };
  console.log(
    `100-instance scale-up (2 workers): ${(up.ms / 1000).toFixed(1)} s to in service, ${up.describes} DescribeInstances ` +
      `(${(up.describes / launched).toFixed(2)} per instance), ${up.subnets} DescribeSubnets; up and down: ${(cycle.ms / 1000).toFixed(1)} s, ` +
      `${cycle.describes} DescribeInstances (${(cycle.describes / launched).toFixed(2)} per instance)`,
  );
  expect(up.describes / launched).toBeLessThanOrEqual(3);
  expect(cycle.describes / launched).toBeLessThanOrEqual(3);
  // Per launch there used to be one; the cache asks once per pool every few seconds per worker.
  expect(up.subnets).toBeLessThanOrEqual(launched / 4);
  await fx.expectEmulatorMatchesGroups();
}, 900_000);

test('a target group that does not exist is a rejected request (non-retryable), as the SDK reports it', async () => {
  const missing = fx.seed.targetGroupArn.replace(/\/[0-9a-f]+$/, '/0000000000000000');
  const err = await targetStates(fx.aws.elbv2, { arn: missing, port: 443 }, ['i-0123456789abcdef0']).catch((e: unknown) => e);
  expect(err).toMatchObject({ type: 'AwsRequestRejected', nonRetryable: true });
  expect((err as Error).message).toMatch(/TargetGroupNotFound/);
});
