/**
 * Issue 11 on the real stack: a shard keyed by AZ ID (resolved with DescribeAvailabilityZones), a subnet in
 * another zone rejected at apply time, and instance-type fallback on InsufficientInstanceCapacity (injected
 * per type and subnet by the fault layer) across types and subnets, with the cool-down.
 */
import { CreateSubnetCommand, DescribeInstanceTypesCommand, GetInstanceTypesFromInstanceRequirementsCommand, type GetInstanceTypesFromInstanceRequirementsCommandOutput } from '@aws-sdk/client-ec2';
import { groupStatus, waitForConvergence } from '../../client/ops/status';
import { ConfigValidationError } from '../../common/config';
import { resolveZone } from '../../adapters/ec2/zones';
import { ShardConfigStore } from '../../adapters/s3/config-store';
import { ObjectStore } from '../../adapters/s3/objects';
import { runCli } from '../support/cli';
import { eventually, shardInstances } from '../support/emulator';
import { awsError } from '../support/faults';
import { asOperator } from '../support/operator-calls';
import { patchIdsIn } from '../support/history';
import { recordHistory } from '../support/record-histories';
import { useShard } from '../support/shard-fixture';

const fx = useShard('zf', { worker: true });
const { shard, ref } = fx;

/** The shard's instance workflows whose history records the patch marker `patchId`. */
async function workflowsWithPatch(patchId: string): Promise<string[]> {
  const found: string[] = [];
  for await (const wf of fx.client.workflow.list({ query: `NstanceShard = '${shard}' AND WorkflowType = 'instanceWorkflow'` })) {
    const ids = patchIdsIn(await fx.client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory());
    if (ids.includes(patchId)) found.push(wf.workflowId);
  }
  return found;
}

type Config = { shard: { infra: { zone: string }; subnet_pools: Record<string, string[]> }; templates: { web: Record<string, unknown> } };

test('shard.infra.zone as an AZ ID is resolved; a pool subnet in another zone is rejected at apply, naming it and both zones', async () => {
  // The zone check is the operator's (config apply): the IAM proof judges it against the operator's policy.
  const zone = await asOperator(() => resolveZone(fx.aws.ec2, fx.seed.zone));
  expect(zone?.name).toBe(fx.seed.zone);
  expect(zone?.id).toMatch(/^[a-z]+\d+-az\d+$/);
  const byId = fx.config({ size: 0 }) as Config;
  byId.shard.infra.zone = zone?.id as string;
  await expect(fx.apply(byId)).resolves.toMatchObject({ shard });

  const otherZone = fx.seed.zone.replace(/a$/, 'b');
  const created = await fx.aws.ec2.send(new CreateSubnetCommand({ VpcId: fx.seed.vpcId, CidrBlock: '10.0.200.0/24', AvailabilityZone: otherZone }));
  const stray = created.Subnet?.SubnetId as string;
  const strayZone = created.Subnet?.AvailabilityZoneId as string;
  const wrong = fx.config({ size: 0 }) as Config;
  wrong.shard.infra.zone = zone?.id as string;
  wrong.shard.subnet_pools.private = [...fx.seed.subnetIds, stray];
  const before = await new ShardConfigStore(new ObjectStore({ s3: fx.aws.s3, bucket: fx.bucket }), shard).readConfig();
  const err = await fx.apply(wrong).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ConfigValidationError);
  expect((err as Error).message).toBe(
    `config.jsonc: shard.subnet_pools.private[2]: subnet ${stray} is in zone ${otherZone} (${strayZone}), not the shard's zone ${zone?.name} (${zone?.id}) (shard.infra.zone "${zone?.id}")`,
  );
  // Rejected before anything was stored.
  const after = await new ShardConfigStore(new ObjectStore({ s3: fx.aws.s3, bucket: fx.bucket }), shard).readConfig();
  expect(after?.etag).toBe(before?.etag);

  const unknown = fx.config({ size: 0 }) as Config;
  unknown.shard.infra.zone = 'use1-az99';
  await expect(fx.apply(unknown)).rejects.toThrow(/shard\.infra\.zone: no availability zone "use1-az99" in region/);
});

test('no capacity: the next type, then the next subnet; refused types cool down instead of being asked again', async () => {
  const [first, second] = fx.seed.subnetIds;
  // The first subnet has none of the three types; the second has no m7g.large.
  const short = new Set([`m7g.large@${first}`, `m6g.large@${first}`, `c7g.large@${first}`, `m7g.large@${second}`]);
  fx.faults.failBefore(
    (command, input) => command === 'RunInstances' && short.has(`${String(input.InstanceType)}@${String(input.SubnetId)}`),
    () => awsError('InsufficientInstanceCapacity', 'We currently do not have sufficient capacity in the Availability Zone you requested'),
    10_000,
  );
  const config = fx.config({ size: 3 }) as Config;
  delete config.templates.web.instance_type;
  config.templates.web.instance_types = ['m7g.large', 'm6g.large', 'c7g.large'];
  const mark = fx.faults.callsOf('RunInstances').length;
  await fx.apply(config);
  await waitForConvergence(fx.client, ref, { timeoutMs: 120_000, size: 3, pollMs: 500 });

  const running = await shardInstances(fx.aws.ec2, shard);
  expect(running.map((i) => [i.InstanceType, i.SubnetId])).toEqual(Array(3).fill(['m6g.large', second]));
  // The batch tried the first subnet and left its instances to their workflows, which moved on to the next subnet
  // under patched('i11-capacity-next-subnet'): one of them is kept as the replay recording of that path.
  const movedOn = await workflowsWithPatch('i11-capacity-next-subnet');
  expect(movedOn.length).toBeGreaterThanOrEqual(1);
  recordHistory(movedOn[0], 'instance-capacity-next-subnet-encrypted');
  const rows = JSON.parse((await runCli('instances', '--json', '--shard', shard)).stdout) as { instanceType: string }[];
  expect(rows.map((r) => r.instanceType)).toEqual(['m6g.large', 'm6g.large', 'm6g.large']);

  const runs = fx.faults.callsOf('RunInstances').slice(mark);
  const refused = (type: string, subnet: string) => runs.filter((c) => c.outcome === 'injected' && c.input.InstanceType === type && c.input.SubnetId === subnet).length;
  // Three launches started together may each meet a refusal before the first one's cool-down is set, never more.
  for (const key of short) {
    const [type, subnet] = key.split('@');
    expect(refused(type, subnet)).toBeLessThanOrEqual(3);
  }
  expect(refused('m7g.large', first)).toBeGreaterThanOrEqual(1);

  // While they cool down, more launches ask EC2 only for what has capacity: one call each.
  const before = fx.faults.callsOf('RunInstances').length;
  await fx.scale(6);
  await waitForConvergence(fx.client, ref, { timeoutMs: 120_000, size: 6, pollMs: 500 });
  const later = fx.faults.callsOf('RunInstances').slice(before);
  expect(later.map((c) => [c.input.InstanceType, c.input.SubnetId, c.outcome])).toEqual(Array(3).fill(['m6g.large', second, 'ok']));

  // A fallback type is not drift: every member runs m6g.large while the spec prefers m7g.large, and the group,
  // once it has judged its members' drift, finds none to rotate.
  const judged = await eventually('the group to judge drift', async () => {
    const status = await groupStatus(fx.client, ref);
    return status.rotation && !status.rotation.unjudged ? status : undefined;
  }, 30_000);
  expect(judged.rotation).toMatchObject({ drifted: 0, replacing: {} });
  expect(judged.members.map((m) => [m.instanceType, m.drift, m.replacing])).toEqual(Array(6).fill(['m6g.large', undefined, undefined]));
  fx.faults.clear();
  await fx.expectEmulatorMatchesGroups();
});

test('instance_requirements resolve on moto (DescribeInstanceTypes, as it lacks GetInstanceTypesFromInstanceRequirements) to an ordered list', async () => {
  // Applied first, so the IAM proof grants what a config with instance_requirements needs.
  const config = fx.config({ size: 0 }) as Config;
  delete config.templates.web.instance_type;
  config.templates.web.instance_requirements = { vcpu: { min: 2, max: 2 }, memory_mib: { min: 8192, max: 8192 } };
  await fx.apply(config);
  const { InstanceRequirementsResolver } = await import('../../adapters/ec2/instance-requirements');
  const { defaultEc2RateLimits } = await import('../../adapters/aws/token-bucket');
  // The worker's resolver on the worker's clients (its asks are the worker's use), seen through its client: the group, loading the config just applied, may be resolving
  // the same requirements at the same time, and its call may still be in flight in the fault layer's log.
  const asked: string[] = [];
  let sent = 0;
  const ec2 = {
    send: async (command: unknown) => {
      sent += 1;
      const selection = command instanceof GetInstanceTypesFromInstanceRequirementsCommand;
      try {
        const out = await fx.h.workerAws.ec2.send(command as never);
        if (selection) asked.push('answered');
        return out;
      } catch (err) {
        if (selection) asked.push('refused');
        throw err;
      }
    },
  };
  const resolver = new InstanceRequirementsResolver({ ec2: ec2 as never, describeLimit: defaultEc2RateLimits().describe });
  const r = { vcpu: { min: 2, max: 2 }, memory_mib: { min: 8192, max: 8192 }, burstable: 'excluded' as const, max_types: 5, excluded_types: ['m6gd'] };
  const types = await resolver.resolve(r, 'arm64', 'group default/web');
  // The path that ran on moto: EC2's selection was asked and refused (moto lacks it), the described types were filtered here.
  expect(asked).toEqual(['refused']);
  expect(fx.faults.callsOf('DescribeInstanceTypes').length).toBeGreaterThan(0);
  expect(types.length).toBeGreaterThan(0);
  expect(types.length).toBeLessThanOrEqual(5);
  expect(types).toContain('m7g.large');
  expect(types.some((t) => t.startsWith('m6gd.'))).toBe(false);
  // Cached: a second resolution asks EC2 nothing.
  const calls = sent;
  expect(await resolver.resolve(r, 'arm64', 'group default/web')).toEqual(types);
  expect(sent).toBe(calls);
  await expect(resolver.resolve({ ...r, vcpu: { min: 1000, max: 1000 } }, 'arm64', 'group default/web')).rejects.toThrow(/group default\/web\.instance_requirements: no arm64 instance type/);
});

test('instance_requirements where EC2 answers GetInstanceTypesFromInstanceRequirements: its selection (all pages) bounds the types described on moto', async () => {
  // moto lacks the call, so EC2's answer is played here (two pages); DescribeInstanceTypes is moto's.
  const selected = [['m7g.large', 'c7g.xlarge'], ['m6g.large']];
  const asked: GetInstanceTypesFromInstanceRequirementsCommand['input'][] = [];
  const ec2 = {
    send: async (command: unknown) => {
      if (!(command instanceof GetInstanceTypesFromInstanceRequirementsCommand)) return fx.aws.ec2.send(command as never);
      asked.push(command.input);
      const page = asked.length - 1;
      return { InstanceTypes: (selected[page] ?? []).map((t) => ({ InstanceType: t })), NextToken: page + 1 < selected.length ? `page-${page + 1}` : undefined } as GetInstanceTypesFromInstanceRequirementsCommandOutput;
    },
  };
  const { InstanceRequirementsResolver } = await import('../../adapters/ec2/instance-requirements');
  const { defaultEc2RateLimits } = await import('../../adapters/aws/token-bucket');
  const r = { vcpu: { min: 2, max: 2 }, memory_mib: { min: 8192, max: 8192 }, burstable: 'excluded' as const, max_types: 5, excluded_types: ['m6gd'] };
  const onMoto = await new InstanceRequirementsResolver({ ec2: fx.aws.ec2, describeLimit: defaultEc2RateLimits().describe }).resolve(r, 'arm64', 'group default/web');
  const withSelection = await new InstanceRequirementsResolver({ ec2: ec2 as never, describeLimit: defaultEc2RateLimits().describe }).resolve(r, 'arm64', 'group default/web');
  // EC2's selection, still filtered by the requirements here (c7g.xlarge has 4 vCPUs), smallest first.
  expect(withSelection).toEqual(['m6g.large', 'm7g.large']);
  // Not what moto alone gives: the selection was used, not ignored.
  expect(onMoto).not.toEqual(withSelection);
  expect(asked.map((a) => a.NextToken)).toEqual([undefined, 'page-1']);
  expect(asked[0]).toMatchObject({
    ArchitectureTypes: ['arm64'],
    InstanceRequirements: { VCpuCount: { Min: 2, Max: 2 }, MemoryMiB: { Min: 8192, Max: 8192 }, BurstablePerformance: 'excluded', ExcludedInstanceTypes: ['m6gd'] },
  });
});

test('a group whose template gives instance_requirements runs its instances with a type the requirements select', async () => {
  const config = fx.config({ size: 2 }) as Config;
  delete config.templates.web.instance_type;
  delete config.templates.web.instance_types;
  const requirements = { vcpu: { min: 2, max: 2 }, memory_mib: { min: 8192, max: 8192 }, excluded_types: ['m6gd', 'm7g'] };
  config.templates.web.instance_requirements = requirements;
  // The earlier tests leave the group empty (size 0): every instance running after this apply is launched from the requirements.
  await waitForConvergence(fx.client, ref, { timeoutMs: 120_000, size: 0, pollMs: 500 });
  expect(await shardInstances(fx.aws.ec2, shard)).toEqual([]);
  const mark = fx.faults.callsOf('RunInstances').length;
  await fx.apply(config);
  await waitForConvergence(fx.client, ref, { timeoutMs: 120_000, size: 2, pollMs: 500 });

  const running = await shardInstances(fx.aws.ec2, shard);
  expect(running).toHaveLength(2);
  const launched = fx.faults.callsOf('RunInstances').slice(mark).filter((c) => c.outcome === 'ok');
  expect(launched.length).toBeGreaterThanOrEqual(1);
  expect([...new Set(launched.map((c) => String(c.input.InstanceType)))].sort()).toEqual([...new Set(running.map((i) => String(i.InstanceType)))].sort());
  const types = [...new Set(running.map((i) => i.InstanceType as string))];
  // What EC2 says of each type launched: what the requirements ask (2 vCPUs, 8 GiB, the template's arm64, not burstable, not excluded).
  const described = await fx.aws.ec2.send(new DescribeInstanceTypesCommand({ InstanceTypes: types as never }));
  expect(described.InstanceTypes?.map((t) => t.InstanceType).sort()).toEqual([...types].sort());
  for (const t of described.InstanceTypes ?? []) {
    expect([t.InstanceType, t.VCpuInfo?.DefaultVCpus, t.MemoryInfo?.SizeInMiB, t.BurstablePerformanceSupported ?? false]).toEqual([t.InstanceType, 2, 8192, false]);
    expect(t.ProcessorInfo?.SupportedArchitectures).toContain('arm64');
    expect(String(t.InstanceType).split('.')[0]).not.toMatch(/^(m6gd|m7g)$/);
  }
  // The members record the type they run, as `nstance instances` shows it.
  const members = (await groupStatus(fx.client, ref)).members;
  expect(members.map((m) => m.instanceType).sort()).toEqual(running.map((i) => i.InstanceType).sort());
  await fx.expectEmulatorMatchesGroups();
});
