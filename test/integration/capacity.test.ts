import { DescribeImagesCommand } from '@aws-sdk/client-ec2';
import { groupStatus, waitForConvergence, type GroupRow } from '../../client/ops/status';
import { groupWorkflowId } from '../../common/names';
import { runCli } from '../support/cli';
import { eventually, shardInstances } from '../support/emulator';
import { awsError } from '../support/faults';
import { useShard } from '../support/shard-fixture';

const fx = useShard('cap', { worker: true });
const { shard, ref } = fx;

test('a subnet out of addresses moves the launch to the next subnet of the pool', async () => {
  const [first, second] = fx.seed.subnetIds;
  fx.faults.failBefore(
    (command, input) => command === 'RunInstances' && input.SubnetId === first,
    () => awsError('InsufficientFreeAddressesInSubnet', `There are not enough free addresses in subnet '${first}'`),
    100,
  );
  await fx.apply({ size: 2 });
  await waitForConvergence(fx.client, ref, { timeoutMs: 90_000, size: 2, pollMs: 300 });
  const running = await shardInstances(fx.aws.ec2, shard);
  expect(running).toHaveLength(2);
  expect(running.map((i) => i.SubnetId)).toEqual([second, second]);
  // Each launch tried the full subnet at most once; once one was refused there, the worker's subnet cache
  // marked it full, so a selection made after that went straight to the next subnet.
  const refused = fx.faults.callsOf('RunInstances').filter((c) => c.outcome === 'injected' && c.input.SubnetId === first);
  expect(refused.length).toBeGreaterThanOrEqual(1);
  expect(refused.length).toBeLessThanOrEqual(2);
  fx.faults.clear();
  await fx.expectEmulatorMatchesGroups();
});

test('no capacity: retried with backoff, reported in `nstance groups`, no tight loop; converges once capacity returns', async () => {
  fx.faults.failBefore('RunInstances', () => awsError('InsufficientInstanceCapacity', 'We currently do not have sufficient m7g.large capacity'), 1000);
  const mark = fx.faults.callsOf('RunInstances').length;
  await fx.scale(3);

  const reported = await eventually('capacity reported', async () => {
    const result = await runCli('groups', '--json', '--shard', shard);
    const [row] = JSON.parse(result.stdout) as { lastError?: string }[];
    return row.lastError?.includes('InsufficientInstanceCapacity') ? row : undefined;
  }, 30_000);
  expect(reported.lastError).toMatch(/no m7g\.large capacity/);
  // Backoff, not a tight loop: over the next 8 s at most a couple more attempts.
  const before = fx.faults.callsOf('RunInstances').length;
  await new Promise((r) => setTimeout(r, 8000));
  expect(fx.faults.callsOf('RunInstances').length - before).toBeLessThanOrEqual(2);
  expect(before - mark).toBeLessThanOrEqual(3);
  expect((await fx.client.workflow.getHandle(`nstance:${shard}:group:default/web`).describe()).status.name).toBe('RUNNING');

  fx.faults.clear();
  await waitForConvergence(fx.client, ref, { timeoutMs: 120_000, size: 3, pollMs: 500 });
  expect(await shardInstances(fx.aws.ec2, shard)).toHaveLength(3);
  expect((await groupStatus(fx.client, ref)).lastError).toBeUndefined();
  await fx.expectEmulatorMatchesGroups();
});

test('images: a failed look-up keeps the last good id; with nothing cached the configured fallback is used', async () => {
  const { Images } = await fx.aws.ec2.send(new DescribeImagesCommand({ Owners: ['amazon'], Filters: [{ Name: 'architecture', Values: ['arm64'] }] }));
  const fallback = (Images ?? []).map((i) => i.ImageId as string).find((id) => id !== fx.seed.imageId) as string;
  const cached = (await shardInstances(fx.aws.ec2, shard))[0].ImageId;
  const config = fx.config({ size: 4, shardSettings: { image_refresh_interval: '1s' } }) as {
    images: { al2023arm: { fallback: string[] } };
    groups: Record<string, Record<string, unknown>>;
  };
  config.images.al2023arm.fallback = [fallback];
  config.groups.other = { api: { template: 'web', size: 1 } };
  fx.faults.failBefore('DescribeImages', () => awsError('RequestLimitExceeded', 'injected: DescribeImages throttled'), 10_000);
  await fx.apply(config);

  await waitForConvergence(fx.client, ref, { timeoutMs: 90_000, size: 4, pollMs: 500 });
  await waitForConvergence(fx.client, { shard, tenant: 'other', group: 'api' }, { timeoutMs: 90_000, size: 1, pollMs: 500 });
  const byGroup = (group: string) => shardInstances(fx.aws.ec2, shard).then((all) => all.filter((i) => i.Tags?.some((t) => t.Key === 'nstance:group' && t.Value === group)));
  // default/web had resolved an image before: new instances keep that id while look-ups fail.
  expect(new Set((await byGroup('default/web')).map((i) => i.ImageId))).toEqual(new Set([cached]));
  // other/api never resolved one: the fallback.
  expect((await byGroup('other/api')).map((i) => i.ImageId)).toEqual([fallback]);
  expect(fx.faults.callsOf('DescribeImages').some((c) => c.outcome === 'injected')).toBe(true);
  fx.faults.clear();
  await fx.expectEmulatorMatchesGroups();
});

test('no subnet of the pool left: reported in `nstance groups` and the current details, no tight loop; converges once addresses return', async () => {
  const subnets = fx.seed.subnetIds;
  fx.faults.failBefore(
    (command, input) => command === 'RunInstances' && subnets.includes(String(input.SubnetId)),
    () => awsError('InsufficientFreeAddressesInSubnet', 'There are not enough free addresses in the subnet to satisfy the requested number of instances.'),
    10_000,
  );
  const mark = fx.faults.callsOf('RunInstances').length;
  const desired = (await groupStatus(fx.client, ref)).desired + 1;
  await fx.scale(desired);

  const reported = await eventually('pool exhaustion reported', async () => {
    const result = await runCli('groups', '--json', '--shard', shard);
    const row = (JSON.parse(result.stdout) as GroupRow[]).find((r) => r.tenant === 'default' && r.group === 'web');
    return row?.lastError?.includes('subnet pool "private"') ? row : undefined;
  }, 30_000);
  expect(reported.lastError).toMatch(/subnet pool "private" has no subnet left/);
  // The Web UI's "current details" of the group workflow say the same.
  const handle = fx.client.workflow.getHandle(groupWorkflowId(shard, 'default', 'web'));
  const details = await eventually('current details', async () => {
    const meta = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
    return meta.currentDetails?.includes('subnet pool "private"') ? meta.currentDetails : undefined;
  }, 15_000);
  expect(details).toMatch(/last error:.*subnet pool "private" has no subnet left/);

  // A durable backoff (5 s, then 10 s, ...), not the activity's tight retries: over 8 s at most two
  // rounds of one attempt per subnet, and at most one DescribeSubnets per round (the worker's subnet
  // cache answers the round's other selections; it expires before the next round).
  const before = { runs: fx.faults.callsOf('RunInstances').length, describes: fx.faults.callsOf('DescribeSubnets').length };
  await new Promise((r) => setTimeout(r, 8000));
  expect(fx.faults.callsOf('RunInstances').length - before.runs).toBeLessThanOrEqual(2 * subnets.length);
  expect(fx.faults.callsOf('DescribeSubnets').length - before.describes).toBeLessThanOrEqual(2);
  expect(before.runs - mark).toBeLessThanOrEqual(2 * subnets.length);
  // None of them reached EC2 (each was refused for addresses): nothing was launched meanwhile.
  expect(fx.faults.callsOf('RunInstances').slice(mark).filter((c) => c.outcome !== 'injected')).toEqual([]);
  expect((await handle.describe()).status.name).toBe('RUNNING');

  fx.faults.clear();
  await waitForConvergence(fx.client, ref, { timeoutMs: 120_000, size: desired, pollMs: 500 });
  expect((await groupStatus(fx.client, ref)).lastError).toBeUndefined();
  await fx.expectEmulatorMatchesGroups();
});

test('a fallback image of another architecture is not launched: the group says why', async () => {
  const { Images } = await fx.aws.ec2.send(new DescribeImagesCommand({ Owners: ['amazon'], Filters: [{ Name: 'architecture', Values: ['x86_64'] }] }));
  const x86 = Images?.[0]?.ImageId as string;
  expect(x86).toBeDefined();
  const config = fx.config({ size: 3 }) as {
    images: Record<string, unknown>;
    templates: Record<string, Record<string, unknown>>;
    groups: Record<string, Record<string, unknown>>;
  };
  config.images.nomatch = { owners: ['amazon'], filters: [{ name: 'name', values: ['no-such-image-*'] }], fallback: [x86] };
  config.templates.bad = { ...config.templates.web, kind: 'bad', args: { ImageId: '{{ .Image.nomatch }}' } };
  config.groups.other = { bad: { template: 'bad', size: 1 } };
  const runsBefore = fx.faults.callsOf('RunInstances').length;
  await fx.apply(config);
  const bad = { shard, tenant: 'other', group: 'bad' };
  const status = await eventually('the reason reported', async () => {
    const s = await groupStatus(fx.client, bad).catch(() => undefined);
    return s?.lastError?.includes('cannot be used') ? s : undefined;
  }, 60_000);
  expect(status.lastError).toContain(`images.nomatch: no image matches the filters, and the fallback ${x86} cannot be used: ${x86} is x86_64 but the template is arm64`);
  expect(status.members).toEqual([]);
  // Nothing was launched for it.
  const launchedForBad = fx.faults.callsOf('RunInstances').slice(runsBefore).filter((c) => JSON.stringify(c.input).includes('other/bad'));
  expect(launchedForBad).toEqual([]);
  await fx.apply(fx.config({ size: 3 }));
});
