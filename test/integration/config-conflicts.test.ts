import { parseConfigText, parseDynamicGroupsText } from '../../common/config';
import { s3Keys } from '../../common/names';
import { ObjectStore, WriteConflictError } from '../../adapters/s3/objects';
import { ShardConfigStore } from '../../adapters/s3/config-store';
import { scaleGroup } from '../../client/ops/scale';
import { useShard } from '../support/shard-fixture';

const fx = useShard('cfl');
const { shard, ref: web } = fx;
const objects = () => new ObjectStore({ s3: fx.aws.s3, bucket: fx.bucket });

const apply = (size: number) => fx.apply({ size });
const putTo = (key: string) => (command: string, input: Record<string, unknown>) => command === 'PutObject' && input.Key === key;

async function stored() {
  const config = await objects().read(s3Keys.config(shard));
  const groups = await objects().read(s3Keys.groups(shard));
  return {
    size: parseConfigText(config!.text, 'config.jsonc').groups!.default.web.size,
    dynamic: groups ? parseDynamicGroupsText(groups.text, 'groups.jsonc').groups : {},
  };
}

test('a config apply racing a dynamic-group write gets a conflict, and neither write is lost', async () => {
  await apply(2);
  await fx.scale(4);
  expect((await stored()).dynamic.default.web).toEqual({ size: 4 });

  // Between the apply's read and its write of groups.jsonc, another operator scales the group.
  fx.faults.before(putTo(s3Keys.groups(shard)), () => fx.scale(5).then(() => undefined));
  await expect(apply(3)).rejects.toThrow(WriteConflictError);

  const after = await stored();
  expect(after.size).toBe(2); // the losing apply wrote nothing
  expect(after.dynamic.default.web).toEqual({ size: 5 }); // the winner's write survived
});

test('re-running the apply lands on top of the winner', async () => {
  const result = await apply(3);
  expect(result.droppedOverrides).toEqual(['default/web']);
  const after = await stored();
  expect(after.size).toBe(3);
  expect(after.dynamic.default?.web).toBeUndefined();
});

test('two config applies racing: the later writer gets a conflict and the first one stays', async () => {
  fx.faults.before(putTo(s3Keys.config(shard)), () => apply(6).then(() => undefined));
  await expect(apply(7)).rejects.toThrow(/conflict writing .*config\.jsonc/);
  expect((await stored()).size).toBe(6);
});

test('a scale racing another dynamic-group writer re-reads and keeps both changes', async () => {
  const addApiGroup = async () => {
    const current = await objects().read(s3Keys.groups(shard));
    const dynamic = current ? parseDynamicGroupsText(current.text, 'groups.jsonc') : { groups: {} };
    dynamic.groups.default = { ...(dynamic.groups.default ?? {}), api: { template: 'web', size: 0 } };
    await objects().write(s3Keys.groups(shard), JSON.stringify(dynamic), current ? { etag: current.etag } : { absent: true });
  };
  fx.faults.before(putTo(s3Keys.groups(shard)), addApiGroup);
  await fx.scale(8);
  const after = await stored();
  expect(after.dynamic.default.web).toEqual({ size: 8 });
  expect(after.dynamic.default.api).toMatchObject({ template: 'web', size: 0 });
  expect(fx.faults.callsOf('PutObject').filter((c) => c.input.Key === s3Keys.groups(shard) && c.outcome === 'error').length).toBeGreaterThanOrEqual(1);
});

test('removing a group drops its scale override; one left behind by a racing scale does not wedge the shard', async () => {
  const api = { shard, tenant: 'other', group: 'api' };
  await fx.apply({ size: 8, groups: { other: { api: { template: 'web', size: 1 } } } });
  await scaleGroup({ client: fx.client, s3: fx.aws.s3, bucket: fx.bucket, group: api, size: 2, actor: 'test' });
  expect((await stored()).dynamic.other.api).toEqual({ size: 2 });

  // The config no longer has other/api: the apply succeeds and takes the override with the group.
  const result = await fx.apply({ size: 8 });
  expect(result.removedGroups).toEqual(['other/api']);
  expect(result.droppedOverrides).toEqual(['other/api']);
  expect((await stored()).dynamic.other).toBeUndefined();

  // A scale that read the old config and wrote after the apply leaves an orphan override behind.
  const current = await objects().read(s3Keys.groups(shard));
  const dynamic = parseDynamicGroupsText(current!.text, 'groups.jsonc');
  dynamic.groups.other = { api: { size: 3 } };
  await objects().write(s3Keys.groups(shard), JSON.stringify(dynamic), { etag: current!.etag });
  const snapshot = await new ShardConfigStore(objects(), shard).load();
  expect(snapshot?.orphanOverrides).toEqual(['other/api']);
  expect(snapshot?.dynamic.groups.other).toBeUndefined();
  // The next apply goes through, and clears the orphan away.
  await expect(fx.apply({ size: 8 })).resolves.toMatchObject({ droppedOverrides: ['other/api'] });
  expect((await stored()).dynamic.other).toBeUndefined();
});
