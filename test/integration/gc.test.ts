import { RunInstancesCommand } from '@aws-sdk/client-ec2';
import { TAG } from '../../common/names';
import { groupStatus } from '../../client/ops/status';
import type { AuditEntry } from '../../common/types';
import { eventually, listKeys, readJson, shardInstances } from '../support/emulator';
import { useShard } from '../support/shard-fixture';

const fx = useShard('gc', { worker: true, registrar: true, config: { size: 1, reconcileInterval: '1s', shardSettings: { garbage_collection: { interval: '1s', registration_timeout: '10s' } } } });
const { shard, ref } = fx;

async function launchOrphan(instanceId: string): Promise<string> {
  const out = await fx.aws.ec2.send(
    new RunInstancesCommand({
      ImageId: fx.seed.imageId,
      InstanceType: 'm7g.large',
      SubnetId: fx.seed.subnetIds[0],
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
    const s = await groupStatus(fx.client, ref);
    return s.members.find((m) => m.phase === 'in-service');
  });
  const orphan = await launchOrphan('web-orphan000001');
  await eventually('orphan terminated', async () => {
    const gone = await shardInstances(fx.aws.ec2, shard, ['shutting-down', 'terminated']);
    return gone.some((i) => i.InstanceId === orphan) ? true : undefined;
  }, 60_000);
  const audit = await Promise.all((await listKeys(fx.aws.s3, fx.bucket, `shard/${shard}/audit/`)).map((k) => readJson<AuditEntry>(fx.aws.s3, fx.bucket, k)));
  const gc = audit.filter((e) => e.action === 'gc.terminate');
  expect(gc).toHaveLength(1);
  expect(gc[0].ec2InstanceIds).toEqual([orphan]);
  // What the group owns is untouched: the emulator runs exactly the group's members.
  const members = (await groupStatus(fx.client, ref)).members.map((m) => m.ec2InstanceId);
  expect(members).toContain(owned.ec2InstanceId);
  expect((await shardInstances(fx.aws.ec2, shard)).map((i) => i.InstanceId).sort()).toEqual(members.sort());
});

test('a just-launched instance that Describe does not show yet is neither collected nor duplicated', async () => {
  fx.faults.hideNewInstances(4000);
  await fx.scale(2);
  const both = await eventually('2 in service', async () => {
    const s = await groupStatus(fx.client, ref);
    return s.members.filter((m) => m.phase === 'in-service').length === 2 ? s : undefined;
  }, 60_000);
  // Let a few GC passes run past the grace period.
  await new Promise((r) => setTimeout(r, 8000));
  const all = await shardInstances(fx.aws.ec2, shard, ['pending', 'running', 'shutting-down', 'terminated']);
  const alive = all.filter((i) => ['pending', 'running'].includes(i.State?.Name ?? ''));
  expect(alive.map((i) => i.InstanceId).sort()).toEqual(both.members.map((m) => m.ec2InstanceId).sort());
  // Only the orphan of the first test was ever terminated: no duplicate launched, no wrongful kill.
  expect(all.filter((i) => !['pending', 'running'].includes(i.State?.Name ?? ''))).toHaveLength(1);
  fx.faults.hideNewInstances(0);
});
