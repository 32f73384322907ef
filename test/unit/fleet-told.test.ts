/** The simulated fleet's `told` discovery: it describes only the instances it was told of, and only until they run. */
import type { EC2Client } from '@aws-sdk/client-ec2';
import { SimulatedFleet } from '../../client/agent/fleet';
import { TAG } from '../../common/names';

interface Sent {
  command: string;
  input: { Filters?: { Name: string; Values: string[] }[]; InstanceId?: string };
}

function fakeEc2(states: Record<string, { state: string; shard: string }>): { ec2: EC2Client; sent: Sent[] } {
  const sent: Sent[] = [];
  const send = async (command: { constructor: { name: string }; input: Sent['input'] }) => {
    sent.push({ command: command.constructor.name, input: command.input });
    if (command.constructor.name === 'DescribeInstanceAttributeCommand') return { UserData: { Value: Buffer.from('#!/bin/bash\necho no agent here\n').toString('base64') } };
    const ids = command.input.Filters?.find((f) => f.Name === 'instance-id')?.Values ?? Object.keys(states);
    const instances = ids
      .filter((id) => states[id])
      .map((id) => ({ InstanceId: id, State: { Name: states[id]?.state }, Tags: [{ Key: TAG.shard, Value: states[id]?.shard }, { Key: TAG.instanceId, Value: `web-${id}` }] }));
    return { Reservations: [{ Instances: instances }] };
  };
  return { ec2: { send } as unknown as EC2Client, sent };
}

describe('SimulatedFleet told discovery', () => {
  it('describes only the told ids, keeps pending ones, drops other shards and unknown-to-run ones', async () => {
    const states: Record<string, { state: string; shard: string }> = {
      'i-run': { state: 'running', shard: 's1' },
      'i-pending': { state: 'pending', shard: 's1' },
      'i-other': { state: 'running', shard: 's2' },
      'i-gone': { state: 'terminated', shard: 's1' },
      'i-untold': { state: 'running', shard: 's1' },
    };
    const { ec2, sent } = fakeEc2(states);
    const fleet = new SimulatedFleet({ ec2, shard: 's1', resolveAddress: (a) => a, stateRoot: '/tmp/unused', discovery: 'told' });
    await fleet.poll();
    expect(sent).toHaveLength(0);

    fleet.launched(['i-run', 'i-pending', 'i-other', 'i-gone']);
    await fleet.poll();
    const describes = sent.filter((s) => s.command === 'DescribeInstancesCommand');
    expect(describes).toHaveLength(1);
    expect(describes[0]?.input.Filters).toEqual([{ Name: 'instance-id', Values: ['i-run', 'i-pending', 'i-other', 'i-gone'] }]);
    // Its userdata has no agent command line: seen, nothing to run.
    expect([...fleet.skipped]).toEqual(['i-run']);
    expect(sent.filter((s) => s.command === 'DescribeInstanceAttributeCommand').map((s) => s.input.InstanceId)).toEqual(['i-run']);

    sent.length = 0;
    await fleet.poll();
    expect(sent.map((s) => s.input.Filters?.[0]?.Values)).toEqual([['i-pending']]);

    fleet.terminated(['i-pending']);
    sent.length = 0;
    await fleet.poll();
    expect(sent).toHaveLength(0);
    await fleet.stop();
  });
});
