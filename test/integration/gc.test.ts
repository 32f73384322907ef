import { RunInstancesCommand } from '@aws-sdk/client-ec2';
import { TAG } from '../../common/names';
import { applyConfig } from '../../client/ops/apply';
import { scaleGroup } from '../../client/ops/scale';
import { groupStatus } from '../../client/ops/status';
import type { AuditEntry } from '../../common/types';
import type { SeedResult } from '../../scripts/seed-emulator';
import { eventually, listKeys, readJson, shardInstances } from '../support/emulator';
import { configText, seedShard, terminateShardWorkflows, testConfig } from '../support/fixtures';
import { createHarness, type Harness } from '../support/harness';
import { Registrar } from '../support/registrar';

const shard = `gc-${Date.now().toString(36)}`;
const ref = { shard, tenant: 'default', group: 'web' };
let h: Harness;
let seed: SeedResult;
let registrar: Registrar;

beforeAll(async () => {
  h = await createHarness({ shard, bucket: `nstance-${shard}` });
  seed = await seedShard(h);
  await h.startWorker();
  registrar = new Registrar(h.client, ref).start();
  const config = testConfig(seed, { shard, bucket: h.bucket, size: 1, reconcileInterval: '1s', shardSettings: { garbage_collection: { interval: '1s', registration_timeout: '10s' } } });
  await applyConfig({ client: h.client, s3: h.aws.s3, text: configText(config), file: 'config.jsonc', actor: 'test' });
});

afterAll(async () => {
  registrar.stop();
  await terminateShardWorkflows(h.client, shard);
  await h.close();
});

async function launchOrphan(instanceId: string): Promise<string> {
  const out = await h.aws.ec2.send(
    new RunInstancesCommand({
      ImageId: seed.imageId,
      InstanceType: 'm7g.large',
      SubnetId: seed.subnetIds[0],
      MinCount: 1,
      MaxCount: 1,
      TagSpecifications: [
        {
          ResourceType: 'instance',
          Tags: [
            { Key: TAG.instanceId, Value: instanceId },
            { Key: TAG.clusterId, Value: 'test' },
            { Key: TAG.shard, Value: shard },
            { Key: TAG.managed, Value: 'true' },
          ],
        },
      ],
    }),
  );
  return out.Instances![0].InstanceId!;
}

test('an orphan (tagged, no workflow) is terminated after the grace period and audited; owned instances are kept', async () => {
  const owned = await eventually('the group instance in service', async () => {
    const s = await groupStatus(h.client, ref);
    return s.members.find((m) => m.phase === 'in-service');
  });
  const orphan = await launchOrphan('web-orphan000001');
  await eventually('orphan terminated', async () => {
    const gone = await shardInstances(h.aws.ec2, shard, ['shutting-down', 'terminated']);
    return gone.some((i) => i.InstanceId === orphan) ? true : undefined;
  }, 60_000);
  const audit = await Promise.all((await listKeys(h.aws.s3, h.bucket, `shard/${shard}/audit/`)).map((k) => readJson<AuditEntry>(h.aws.s3, h.bucket, k)));
  const gc = audit.filter((e) => e.action === 'gc.terminate');
  expect(gc).toHaveLength(1);
  expect(gc[0].ec2InstanceIds).toEqual([orphan]);
  // What the group owns is untouched: the emulator runs exactly the group's members.
  const members = (await groupStatus(h.client, ref)).members.map((m) => m.ec2InstanceId);
  expect(members).toContain(owned.ec2InstanceId);
  expect((await shardInstances(h.aws.ec2, shard)).map((i) => i.InstanceId).sort()).toEqual(members.sort());
});

test('a just-launched instance that Describe does not show yet is neither collected nor duplicated', async () => {
  h.faults.hideNewInstances(4000);
  await scaleGroup({ client: h.client, s3: h.aws.s3, bucket: h.bucket, group: ref, size: 2, actor: 'test' });
  const both = await eventually('2 in service', async () => {
    const s = await groupStatus(h.client, ref);
    return s.members.filter((m) => m.phase === 'in-service').length === 2 ? s : undefined;
  }, 60_000);
  // Let a few GC passes run past the grace period.
  await new Promise((r) => setTimeout(r, 8000));
  const all = await shardInstances(h.aws.ec2, shard, ['pending', 'running', 'shutting-down', 'terminated']);
  const alive = all.filter((i) => ['pending', 'running'].includes(i.State?.Name ?? ''));
  expect(alive.map((i) => i.InstanceId).sort()).toEqual(both.members.map((m) => m.ec2InstanceId).sort());
  // Only the orphan of the first test was ever terminated: no duplicate launched, no wrongful kill.
  expect(all.filter((i) => !['pending', 'running'].includes(i.State?.Name ?? ''))).toHaveLength(1);
  h.faults.hideNewInstances(0);
});
