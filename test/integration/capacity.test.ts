import { DescribeImagesCommand } from '@aws-sdk/client-ec2';
import { applyConfig } from '../../client/ops/apply';
import { scaleGroup } from '../../client/ops/scale';
import { groupStatus, waitForConvergence } from '../../client/ops/status';
import type { SeedResult } from '../../scripts/seed-emulator';
import { runCli } from '../support/cli';
import { eventually, shardInstances } from '../support/emulator';
import { awsError } from '../support/faults';
import { configText, seedShard, terminateShardWorkflows, testConfig } from '../support/fixtures';
import { createHarness, type Harness } from '../support/harness';

const shard = `cap-${Date.now().toString(36)}`;
const ref = { shard, tenant: 'default', group: 'web' };
let h: Harness;
let seed: SeedResult;

beforeAll(async () => {
  h = await createHarness({ shard, bucket: `nstance-${shard}` });
  seed = await seedShard(h);
  await h.startWorker();
});

afterAll(async () => {
  await terminateShardWorkflows(h.client, shard);
  await h.close();
});

test('a subnet out of addresses moves the launch to the next subnet of the pool', async () => {
  const [first, second] = seed.subnetIds;
  h.faults.failBefore(
    (command, input) => command === 'RunInstances' && input.SubnetId === first,
    () => awsError('InsufficientFreeAddressesInSubnet', `There are not enough free addresses in subnet '${first}'`),
    100,
  );
  await applyConfig({ client: h.client, s3: h.aws.s3, text: configText(testConfig(seed, { shard, bucket: h.bucket, size: 2 })), file: 'config.jsonc', actor: 'test' });
  await waitForConvergence(h.client, ref, { timeoutMs: 90_000, size: 2, pollMs: 300 });
  const running = await shardInstances(h.aws.ec2, shard);
  expect(running).toHaveLength(2);
  expect(running.map((i) => i.SubnetId)).toEqual([second, second]);
  expect(h.faults.callsOf('RunInstances').filter((c) => c.outcome === 'injected' && c.input.SubnetId === first)).toHaveLength(2);
  h.faults.clear();
});

test('no capacity: retried with backoff, reported in `nstance groups`, no tight loop; converges once capacity returns', async () => {
  h.faults.failBefore('RunInstances', () => awsError('InsufficientInstanceCapacity', 'We currently do not have sufficient m7g.large capacity'), 1000);
  const mark = h.faults.callsOf('RunInstances').length;
  await scaleGroup({ client: h.client, s3: h.aws.s3, bucket: h.bucket, group: ref, size: 3, actor: 'test' });

  const reported = await eventually('capacity reported', async () => {
    const result = await runCli('groups', '--json', '--shard', shard);
    const [row] = JSON.parse(result.stdout) as { lastError?: string }[];
    return row.lastError?.includes('InsufficientInstanceCapacity') ? row : undefined;
  }, 30_000);
  expect(reported.lastError).toMatch(/no m7g\.large capacity/);
  // Backoff, not a tight loop: over the next 8 s at most a couple more attempts.
  const before = h.faults.callsOf('RunInstances').length;
  await new Promise((r) => setTimeout(r, 8000));
  expect(h.faults.callsOf('RunInstances').length - before).toBeLessThanOrEqual(2);
  expect(before - mark).toBeLessThanOrEqual(3);
  expect((await h.client.workflow.getHandle(`nstance:${shard}:group:default/web`).describe()).status.name).toBe('RUNNING');

  h.faults.clear();
  await waitForConvergence(h.client, ref, { timeoutMs: 120_000, size: 3, pollMs: 500 });
  expect(await shardInstances(h.aws.ec2, shard)).toHaveLength(3);
  expect((await groupStatus(h.client, ref)).lastError).toBeUndefined();
});

test('images: a failed look-up keeps the last good id; with nothing cached the configured fallback is used', async () => {
  const { Images } = await h.aws.ec2.send(new DescribeImagesCommand({ Owners: ['amazon'], Filters: [{ Name: 'architecture', Values: ['arm64'] }] }));
  const fallback = (Images ?? []).map((i) => i.ImageId as string).find((id) => id !== seed.imageId) as string;
  const cached = (await shardInstances(h.aws.ec2, shard))[0].ImageId;
  const config = testConfig(seed, { shard, bucket: h.bucket, size: 4, shardSettings: { image_refresh_interval: '1s' } }) as {
    images: { al2023arm: { fallback: string[] } };
    groups: Record<string, Record<string, unknown>>;
  };
  config.images.al2023arm.fallback = [fallback];
  config.groups.other = { api: { template: 'web', size: 1 } };
  h.faults.failBefore('DescribeImages', () => awsError('RequestLimitExceeded', 'injected: DescribeImages throttled'), 10_000);
  await applyConfig({ client: h.client, s3: h.aws.s3, text: configText(config), file: 'config.jsonc', actor: 'test' });

  await waitForConvergence(h.client, ref, { timeoutMs: 90_000, size: 4, pollMs: 500 });
  await waitForConvergence(h.client, { shard, tenant: 'other', group: 'api' }, { timeoutMs: 90_000, size: 1, pollMs: 500 });
  const byGroup = (group: string) => shardInstances(h.aws.ec2, shard).then((all) => all.filter((i) => i.Tags?.some((t) => t.Key === 'nstance:group' && t.Value === group)));
  // default/web had resolved an image before: new instances keep that id while look-ups fail.
  expect(new Set((await byGroup('default/web')).map((i) => i.ImageId))).toEqual(new Set([cached]));
  // other/api never resolved one: the fallback.
  expect((await byGroup('other/api')).map((i) => i.ImageId)).toEqual([fallback]);
  expect(h.faults.callsOf('DescribeImages').some((c) => c.outcome === 'injected')).toBe(true);
  h.faults.clear();
});
