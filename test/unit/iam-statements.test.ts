/**
 * "Nothing more", statement by statement: the generated policy grants a key pair, instance-type
 * look-ups and the leader ENI's reads only when the config needs them, and the zone check only to the
 * operator (`config apply`). The integration suite's check (iam-statements-used.test.ts) then requires
 * every statement and action to have allowed a real call; its judge is tested here on records.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseConfigText } from '../../common/config';
import { cliPolicy, crossAccountDocuments, iamReport } from '../../common/iam/documents';
import { iamActions, workerPolicy } from '../../common/iam/policy';
import { offeredBy, readUsage, recordUsage, unusedStatements, type UsageRecord } from '../support/iam-usage';
import { evaluate, usedBy } from '../support/iam-proof';
import { resourceUsage } from '../support/iam-resource-usage';
import { deletePath, exampleWith, setPath } from './config/example';

const example = parseConfigText(exampleWith(), 'config.jsonc');
const statement = (config: typeof example, sid: string) => workerPolicy(config, { account: '123456789012' }).Statement.find((s) => s.Sid === sid);
const launchResources = (config: typeof example) => statement(config, 'LaunchFromConfiguredResources')?.Resource ?? [];

describe('statements that depend on the config', () => {
  it('grants a key pair only when args name one, and then only that one', () => {
    expect(launchResources(example).filter((r) => r.includes(':key-pair/'))).toEqual([]);
    const named = parseConfigText(exampleWith((c) => setPath(c, 'templates.web.args.KeyName', 'ops')), 'config.jsonc');
    expect(launchResources(named).filter((r) => r.includes(':key-pair/'))).toEqual(['arn:aws:ec2:us-east-1:123456789012:key-pair/ops']);
    const twoLayers = parseConfigText(exampleWith((c) => setPath(c, 'templates.web.args.KeyName', 'ops'), (c) => setPath(c, 'defaults.args.KeyName', 'break-glass')), 'config.jsonc');
    expect(launchResources(twoLayers).filter((r) => r.includes(':key-pair/'))).toEqual([
      'arn:aws:ec2:us-east-1:123456789012:key-pair/break-glass',
      'arn:aws:ec2:us-east-1:123456789012:key-pair/ops',
    ]);
  });

  it('looks instance types up only for instance_requirements (instance_types are launched as listed)', () => {
    const lookups = ['ec2:DescribeInstanceTypes', 'ec2:GetInstanceTypesFromInstanceRequirements'];
    expect(iamActions(example)).not.toEqual(expect.arrayContaining([lookups[0]]));
    const listed = parseConfigText(exampleWith((c) => deletePath(c, 'templates.web.instance_type'), (c) => setPath(c, 'templates.web.instance_types', ['m7g.large', 'm6g.large'])), 'config.jsonc');
    for (const action of lookups) expect(iamActions(listed)).not.toContain(action);
    const selected = parseConfigText(
      exampleWith((c) => deletePath(c, 'templates.web.instance_type'), (c) => setPath(c, 'templates.web.instance_requirements', { vcpu: { min: 2 }, memory_mib: { min: 4096 } })),
      'config.jsonc',
    );
    expect(iamActions(selected)).toEqual(expect.arrayContaining(lookups));
  });

  it('reads network interfaces only with a leader ENI', () => {
    expect(statement(example, 'Ec2Describe')?.Action).toContain('ec2:DescribeNetworkInterfaces');
    const without = parseConfigText(exampleWith((c) => deletePath(c, 'shard.leader_network')), 'config.jsonc');
    expect(statement(without, 'Ec2Describe')?.Action).toEqual(['ec2:DescribeInstances', 'ec2:DescribeImages', 'ec2:DescribeSubnets']);
    expect(statement(without, 'LeaderNetworkInterface')).toBeUndefined();
  });

  it("puts the zone check in the operator's policy, never the worker's; with assume_role, in the shard role's", async () => {
    expect(iamActions(example)).not.toContain('ec2:DescribeAvailabilityZones');
    const cli = cliPolicy(example);
    expect(cli.Statement.map((s) => s.Sid)).toEqual(['ConfigApplyObjects', 'ConfigApplyZoneCheck']);
    expect(iamReport(example).cliPolicy).toEqual(cli);
    const zones = { action: 'ec2:DescribeAvailabilityZones', resource: '*', context: { 'aws:RequestedRegion': 'us-east-1' } };
    const [asOperator] = await evaluate([zones], [cli]);
    expect(asOperator).toMatchObject({ result: 'Allowed', grants: ['ConfigApplyZoneCheck'] });
    const [asWorker] = await evaluate([zones], [workerPolicy(example)]);
    expect(asWorker).toMatchObject({ result: 'ImplicitlyDenied', grants: [] });

    const crossed = parseConfigText(exampleWith((c) => setPath(c, 'shard.infra.assume_role', { role_arn: 'arn:aws:iam::210987654321:role/nstance-fleet', external_id: 'tenant-42' })), 'config.jsonc');
    expect(cliPolicy(crossed).Statement[1]).toEqual({
      Sid: 'ConfigApplyAssumeShardRole',
      Effect: 'Allow',
      Action: ['sts:AssumeRole'],
      Resource: ['arn:aws:iam::210987654321:role/nstance-fleet'],
      Condition: { StringEquals: { 'aws:RequestedRegion': 'us-east-1' } },
    });
    // The zone check must run in the shard's account (zone names map per account), so it is the role's; of it the
    // role needs only DescribeAvailabilityZones, the worker's Ec2Describe granting DescribeSubnets already.
    expect(crossAccountDocuments(crossed)?.rolePolicy.Statement.find((s) => s.Sid === 'ConfigApplyZoneCheck')?.Action).toEqual(['ec2:DescribeAvailabilityZones']);
  });
});

describe('the "nothing more" judge (iam-usage.ts)', () => {
  const record = (file: string, offered: UsageRecord['offered'], used: UsageRecord['used']): UsageRecord => ({ file, offered, used });

  it('passes when every offered action allowed a call in some file, and names each one none used', () => {
    const a = record('a.test.ts', { Launch: ['ec2:RunInstances'], Describe: ['ec2:DescribeImages', 'ec2:DescribeInstances'] }, { Launch: ['ec2:RunInstances'], Describe: ['ec2:DescribeInstances'] });
    const b = record('b.test.ts', { Describe: ['ec2:DescribeImages'] }, { Describe: ['ec2:DescribeImages'] });
    expect(unusedStatements([a, b])).toEqual([]);
    const c = record('c.test.ts', { KeyPairs: ['ec2:RunInstances'], Describe: ['ec2:DescribeInstanceTypes'] }, {});
    expect(unusedStatements([a, b, c])).toEqual([
      'statement Describe: ec2:DescribeInstanceTypes never used (offered in a.test.ts, b.test.ts, c.test.ts)',
      'statement KeyPairs (ec2:RunInstances): never used (offered in c.test.ts)',
    ]);
  });

  it('credits the statement the simulator says allowed each request, from a real evaluation', async () => {
    const policy = workerPolicy(example);
    const verdicts = await evaluate(
      [
        { action: 's3:GetObject', resource: `arn:aws:s3:::${example.cluster.storage.bucket}/shard/${example.shard.id}/config.jsonc`, context: { 'aws:RequestedRegion': 'us-east-1' } },
        { action: 'ec2:DescribeInstances', resource: '*', context: { 'aws:RequestedRegion': 'us-east-1' } },
      ],
      [policy],
    );
    const used = usedBy(verdicts);
    expect(used).toEqual({ ConfigStateAndAudit: ['s3:GetObject'], Ec2Describe: ['ec2:DescribeInstances'] });
    const unused = unusedStatements([record('x.test.ts', offeredBy([policy]), used)]);
    // Only what these two requests used is spared: every other statement of the policy is named.
    expect(unused).toContain('statement Ec2Describe: ec2:DescribeImages, ec2:DescribeNetworkInterfaces, ec2:DescribeSubnets never used (offered in x.test.ts)');
    expect(unused).toContain('statement TerminateOwnInstances (ec2:TerminateInstances): never used (offered in x.test.ts)');
    expect(unused.some((u) => u.includes('ConfigStateAndAudit'))).toBe(true);
  });

  it('judges each resource of a used statement: a pattern no allowed call matched is named, by its shape across files', async () => {
    const other = parseConfigText(exampleWith((c) => setPath(c, 'cluster.storage.bucket', 'nstance-other-file'), (c) => setPath(c, 'shard.id', 'use1-az9')), 'config.jsonc');
    const launch = (config: typeof example) => ({ config, policy: workerPolicy(config, { account: '123456789012' }) });
    const subnetOf = (config: typeof example) => config.shard.subnet_pools.private[0];
    const ec2 = 'arn:aws:ec2:us-east-1:123456789012';
    const region = { 'aws:RequestedRegion': 'us-east-1' };
    // File a reads its shard's config and launches from its subnet with its image; file b only reads the CA certificate.
    const inA = await evaluate(
      [
        { action: 's3:GetObject', resource: `arn:aws:s3:::${example.cluster.storage.bucket}/shard/${example.shard.id}/config.jsonc`, context: region },
        { action: 'ec2:RunInstances', resource: `${ec2}:subnet/${subnetOf(example)}`, context: region },
        { action: 'ec2:RunInstances', resource: 'arn:aws:ec2:us-east-1::image/ami-0123', context: region },
      ],
      [launch(example).policy],
    );
    const inB = await evaluate([{ action: 's3:GetObject', resource: 'arn:aws:s3:::nstance-other-file/cluster/ca.crt', context: region }], [launch(other).policy]);
    const a = { ...record('a.test.ts', offeredBy([launch(example).policy]), usedBy(inA)), resources: resourceUsage([launch(example)], inA) };
    const b = { ...record('b.test.ts', offeredBy([launch(other).policy]), usedBy(inB)), resources: resourceUsage([launch(other)], inB) };
    expect(a.resources.used).toEqual({
      ConfigStateAndAudit: ['arn:aws:s3:::{bucket}/shard/{shard}/*'],
      LaunchFromConfiguredResources: [`${ec2}:subnet/{id}`, 'arn:aws:ec2:us-east-1::image/*'],
    });
    const unused = unusedStatements([a, b]);
    // The CA certificate is used in b, the shard's objects in a: one shape each, so ConfigStateAndAudit is whole.
    expect(unused.filter((u) => u.startsWith('statement ConfigStateAndAudit: resource'))).toEqual([]);
    // The launch used a subnet and an image, never a security group or the interface it creates (judged in a,
    // the file that launched: b launched nothing, so its own offer of the statement is judged only as a whole).
    expect(unused).toContain(`statement LaunchFromConfiguredResources: resource ${ec2}:network-interface/*, ${ec2}:security-group/{id} never matched by a call it allowed (offered in a.test.ts)`);
  });

  it('keeps records per proof in the stack log directory, and reads them all back', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iam-usage-'));
    recordUsage({ S: ['a:B'] }, { S: ['a:B'] }, dir);
    recordUsage({ T: ['a:C'] }, {}, dir);
    const back = readUsage(dir);
    expect(back.map((r) => r.offered)).toEqual([{ S: ['a:B'] }, { T: ['a:C'] }]);
    expect(back[0]?.file).toBe('iam-statements.test.ts');
    expect(unusedStatements(back)).toEqual(['statement T (a:C): never used (offered in iam-statements.test.ts)']);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
