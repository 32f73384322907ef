/**
 * The generated IAM policy, evaluated by a policy simulator (@cloud-copilot/iam-simulate): the calls the
 * project makes are allowed, and a table of calls it must never be able to make is denied. The calls go
 * through the same recorder the fault layer uses in the integration scenarios (test/support/iam-calls.ts),
 * whose IAM proof (test/support/iam-proof.ts) checks every call those scenarios really made.
 */
import { parseConfigText } from '../../common/config';
import { crossAccountDocuments, iamReport } from '../../common/iam/documents';
import { iamActions, workerPolicy } from '../../common/iam/policy';
import { TAG } from '../../common/names';
import { authRequestsOf, type ResourceFacts } from '../support/iam-calls';
import { describeVerdict, evaluate } from '../support/iam-proof';
import { runCli } from '../support/cli';
import { exampleWith, examplePath, setPath } from './config/example';

const ACCOUNT = '123456789012';
const REGION = 'us-east-1';
const config = parseConfigText(exampleWith(), 'config.jsonc');
const policy = workerPolicy(config);
const shard = config.shard.id;
const bucket = config.cluster.storage.bucket;
const tg = config.load_balancers.web.target_groups[0].arn;
const eni = config.shard.leader_network?.interface_id as string;
const subnet = config.shard.subnet_pools.private[0];

const ours = { [TAG.clusterId]: 'demo', [TAG.shard]: shard, [TAG.managed]: 'true', [TAG.instanceId]: 'web-abc', [TAG.group]: 'default/web' };
const facts: ResourceFacts = {
  tagsOf: (id) =>
    (<Record<string, Record<string, string>>>{
      'i-ours': ours,
      'i-untagged': {},
      'i-othershard': { ...ours, [TAG.shard]: 'use1-az2' },
      'i-othercluster': { ...ours, [TAG.clusterId]: 'prod' },
      'i-worker': { [TAG.clusterId]: 'demo' },
      'i-stranger': { Name: 'bastion' },
    })[id],
  attachment: (id) => (id === 'eni-attach-1' ? { interfaceId: eni, instanceId: 'i-worker' } : id === 'eni-attach-2' ? { interfaceId: 'eni-0other', instanceId: 'i-worker' } : undefined),
};
const scope = { region: REGION, account: ACCOUNT };
const tags = (t: Record<string, string>) => Object.entries(t).map(([Key, Value]) => ({ Key, Value }));

const launch = (overrides: Record<string, unknown> = {}) => ({
  ImageId: 'ami-0123',
  InstanceType: 'm7g.large',
  SubnetId: subnet,
  SecurityGroupIds: ['sg-0123456789abcdef0'],
  IamInstanceProfile: { Arn: `arn:aws:iam::${ACCOUNT}:instance-profile/nstance-agent` },
  MinCount: 1,
  MaxCount: 1,
  TagSpecifications: [
    { ResourceType: 'instance', Tags: tags(ours) },
    { ResourceType: 'volume', Tags: tags(ours) },
  ],
  ...overrides,
});

/** [what, command, input] */
type Call = [string, string, Record<string, unknown>];

const allowed: Call[] = [
  ['read the shard config', 'GetObject', { Bucket: bucket, Key: `shard/${shard}/config.jsonc` }],
  ['write an audit entry', 'PutObject', { Bucket: bucket, Key: `shard/${shard}/audit/2026-12-01/x.json` }],
  ['write the CA certificate', 'PutObject', { Bucket: bucket, Key: 'cluster/ca.crt' }],
  ['read the CA key', 'GetSecretValue', { SecretId: 'nstance/demo/ca-key' }],
  ['create the registration key', 'CreateSecret', { Name: 'nstance/demo/registration-key' }],
  ['list secrets', 'ListSecrets', { Filters: [{ Key: 'name', Values: ['nstance/demo/'] }] }],
  ['launch with the nstance tags', 'RunInstances', launch()],
  ['terminate our instance', 'TerminateInstances', { InstanceIds: ['i-ours'] }],
  ['register in the configured target group', 'RegisterTargets', { TargetGroupArn: tg, Targets: [{ Id: 'i-ours' }] }],
  ['deregister from the configured target group', 'DeregisterTargets', { TargetGroupArn: tg, Targets: [{ Id: 'i-ours' }] }],
  ['read target health', 'DescribeTargetHealth', { TargetGroupArn: tg }],
  ['attach the leader ENI to a worker', 'AttachNetworkInterface', { NetworkInterfaceId: eni, InstanceId: 'i-worker', DeviceIndex: 1 }],
  ['detach the leader ENI', 'DetachNetworkInterface', { AttachmentId: 'eni-attach-1', Force: true }],
  ['tag the leader ENI with the epoch', 'CreateTags', { Resources: [eni], Tags: tags({ 'nstance:leader-epoch': '3' }) }],
  ['describe instances', 'DescribeInstances', { Filters: [] }],
  ['describe subnets', 'DescribeSubnets', { SubnetIds: [subnet] }],
  ['list the instance records', 'ListObjectsV2', { Bucket: bucket, Prefix: `shard/${shard}/instance/` }],
  ['delete expired instance records', 'DeleteObjects', { Bucket: bucket, Delete: { Objects: [{ Key: `shard/${shard}/instance/default.web-abc.json` }] } }],
];

const denied: Call[] = [
  ['terminate an untagged instance', 'TerminateInstances', { InstanceIds: ['i-untagged'] }],
  ['terminate an instance of another shard', 'TerminateInstances', { InstanceIds: ['i-othershard'] }],
  ['terminate an instance of another cluster', 'TerminateInstances', { InstanceIds: ['i-othercluster'] }],
  ['terminate a worker (tagged with the cluster, not managed)', 'TerminateInstances', { InstanceIds: ['i-worker'] }],
  ['read another bucket', 'GetObject', { Bucket: 'someone-elses-bucket', Key: `shard/${shard}/config.jsonc` }],
  ["read another shard's prefix", 'GetObject', { Bucket: bucket, Key: 'shard/use1-az2/config.jsonc' }],
  ['read outside the prefixes', 'GetObject', { Bucket: bucket, Key: 'backups/db.sql' }],
  ['read a secret outside the prefix', 'GetSecretValue', { SecretId: 'prod/database-password' }],
  ['read a secret of another cluster', 'GetSecretValue', { SecretId: 'nstance/prod/ca-key' }],
  ['deregister from another target group', 'DeregisterTargets', { TargetGroupArn: `arn:aws:elasticloadbalancing:${REGION}:${ACCOUNT}:targetgroup/other/0123456789abcdef`, Targets: [{ Id: 'i-ours' }] }],
  ['register in another target group', 'RegisterTargets', { TargetGroupArn: `arn:aws:elasticloadbalancing:${REGION}:${ACCOUNT}:targetgroup/other/0123456789abcdef`, Targets: [{ Id: 'i-ours' }] }],
  ['launch without the cluster and shard tags', 'RunInstances', launch({ TagSpecifications: [{ ResourceType: 'instance', Tags: tags({ [TAG.instanceId]: 'web-abc', Name: 'x' }) }] })],
  ["launch with another shard's tags", 'RunInstances', launch({ TagSpecifications: [{ ResourceType: 'instance', Tags: tags({ ...ours, [TAG.shard]: 'use1-az2' }) }] })],
  // EC2 judges request tags per resource type: a root volume launched without the tags is refused.
  ['launch with the tags on the instance only, not its volume', 'RunInstances', launch({ TagSpecifications: [{ ResourceType: 'instance', Tags: tags(ours) }] })],
  ['launch into a subnet outside the pools', 'RunInstances', launch({ SubnetId: 'subnet-0elsewhere' })],
  ['launch with another security group', 'RunInstances', launch({ SecurityGroupIds: ['sg-0wideopen'] })],
  ['pass another role', 'RunInstances', launch({ IamInstanceProfile: { Arn: `arn:aws:iam::${ACCOUNT}:instance-profile/admin` } })],
  ['retag an existing instance', 'CreateTags', { Resources: ['i-stranger'], Tags: tags({ [TAG.managed]: 'true' }) }],
  ['attach another ENI', 'AttachNetworkInterface', { NetworkInterfaceId: 'eni-0other', InstanceId: 'i-worker', DeviceIndex: 1 }],
  ['attach the leader ENI to a stranger', 'AttachNetworkInterface', { NetworkInterfaceId: eni, InstanceId: 'i-stranger', DeviceIndex: 1 }],
  ['detach another ENI', 'DetachNetworkInterface', { AttachmentId: 'eni-attach-2', Force: true }],
  ["list another shard's prefix", 'ListObjectsV2', { Bucket: bucket, Prefix: 'shard/use1-az2/' }],
  ['list the whole bucket', 'ListObjectsV2', { Bucket: bucket }],
  ['delete the CA certificate', 'DeleteObjects', { Bucket: bucket, Delete: { Objects: [{ Key: 'cluster/ca.crt' }] } }],
  // Secrets Manager keeps this config's secrets: nothing under cluster/ but the CA certificate.
  ['read an object under cluster/ other than the CA certificate', 'GetObject', { Bucket: bucket, Key: 'cluster/secret/ca-key' }],
  ['write an object under cluster/ other than the CA certificate', 'PutObject', { Bucket: bucket, Key: 'cluster/other/notes.json' }],
  ['list cluster/', 'ListObjectsV2', { Bucket: bucket, Prefix: 'cluster/' }],
  ['create a secret outside the prefix', 'CreateSecret', { Name: 'prod/database-password' }],
  ['overwrite a secret (only the operator, with nstance secrets put)', 'PutSecretValue', { SecretId: 'nstance/demo/ca-key' }],
  ['delete a secret (only the operator, with nstance secrets delete)', 'DeleteSecret', { SecretId: 'nstance/demo/ca-key' }],
  // Only `config apply` resolves the zone: the operator's policy has it, the worker's does not.
  ['describe availability zones (the operator\'s config apply, never the worker)', 'DescribeAvailabilityZones', {}],
  // The example's templates give instance_type: no type look-up, no key pair (args name none).
  ['describe instance types (no template gives instance_requirements)', 'DescribeInstanceTypes', {}],
  ['launch with a key pair (args name none)', 'RunInstances', launch({ KeyName: 'ops' })],
];

/** Allowed when every IAM request of the call is; denied when at least one is. */
async function verdictsOf(call: Call, region = REGION) {
  const requests = authRequestsOf(call[1], call[2], { ...scope, region }, facts) ?? [];
  expect(requests.length).toBeGreaterThan(0);
  return evaluate(requests, [policy], ACCOUNT);
}

describe('the generated worker policy, evaluated by iam-simulate', () => {
  it.each(allowed)('allows: %s', async (_what, ...call) => {
    const verdicts = await verdictsOf(['', ...call]);
    expect(verdicts.filter((v) => v.result !== 'Allowed').map(describeVerdict)).toEqual([]);
  });

  it.each(denied)('denies: %s', async (_what, ...call) => {
    const verdicts = await verdictsOf(['', ...call]);
    expect(verdicts.filter((v) => v.result !== 'Allowed').length).toBeGreaterThan(0);
    // Denied by the policy, not by a malformed request the simulator rejects.
    expect(verdicts.filter((v) => v.result.startsWith('simulator error'))).toEqual([]);
  });

  it('denies every call in another region, even a Describe', async () => {
    for (const call of [allowed[6], allowed[14], allowed[3]]) {
      const verdicts = await verdictsOf(call, 'eu-west-1');
      expect(verdicts.some((v) => v.result !== 'Allowed')).toBe(true);
    }
  });

  it('names the leader ENI by its ARN, the target groups by theirs, and lists unscoped Describe calls apart with the reason', () => {
    const statement = (sid: string) => policy.Statement.find((s) => s.Sid === sid);
    expect(statement('LeaderNetworkInterface')?.Resource).toEqual([`arn:aws:ec2:${REGION}:${ACCOUNT}:network-interface/${eni}`]);
    expect(statement('ConfiguredTargetGroups')?.Resource).toEqual([tg]);
    expect(statement('PassInstanceProfileRoles')?.Resource).toEqual([`arn:aws:iam::${ACCOUNT}:role/nstance-agent`]);
    expect(statement('LaunchTaggedInstances')?.Condition).toEqual({ StringEquals: { 'aws:RequestTag/nstance:cluster-id': 'demo', 'aws:RequestTag/nstance:shard': shard, 'aws:RequestTag/nstance:managed': 'true' } });
    expect(statement('TagOnLaunchOnly')?.Condition).toEqual({ StringEquals: { 'ec2:CreateAction': 'RunInstances' } });
    const report = iamReport(config);
    expect(report.unscoped.flatMap((u) => u.actions)).toEqual(expect.arrayContaining(['ec2:DescribeInstances', 'elasticloadbalancing:DescribeTargetHealth', 'secretsmanager:ListSecrets']));
    for (const u of report.unscoped) expect(u.why).toMatch(/no resource ARN/);
    // Every statement but the unscoped ones names resources; every one is bounded to the region or by tags.
    for (const s of policy.Statement) {
      if (s.Resource.includes('*')) expect(report.unscoped.some((u) => u.actions.join() === s.Action.join())).toBe(true);
      expect(s.Condition).toBeDefined();
    }
  });

  it("passes the instance profiles' roles to EC2 only (iam:PassedToService), and no other role", async () => {
    const pass = (role: string, service: string) =>
      evaluate([{ action: 'iam:PassRole', resource: `arn:aws:iam::${ACCOUNT}:role/${role}`, context: { 'iam:PassedToService': service } }], [policy], ACCOUNT);
    const results = await Promise.all([pass('nstance-agent', 'ec2.amazonaws.com'), pass('nstance-agent', 'lambda.amazonaws.com'), pass('admin', 'ec2.amazonaws.com')]);
    expect(results.map(([v]) => v.result)).toEqual(['Allowed', 'ImplicitlyDenied', 'ImplicitlyDenied']);
  });

  it('needs GetInstanceTypesFromInstanceRequirements only for a config that uses instance_requirements', () => {
    expect(iamActions(config)).not.toContain('ec2:GetInstanceTypesFromInstanceRequirements');
    const withRequirements = parseConfigText(
      exampleWith((c) => {
        setPath(c, 'templates.web.instance_type', undefined);
        setPath(c, 'templates.web.instance_requirements', { vcpu: { min: 2 }, memory_mib: { min: 4096 } });
      }),
      'config.jsonc',
    );
    expect(iamActions(withRequirements)).toContain('ec2:GetInstanceTypesFromInstanceRequirements');
  });
});

describe('cross-account', () => {
  const crossConfig = parseConfigText(
    exampleWith((c) => setPath(c, 'shard.infra.assume_role', { role_arn: 'arn:aws:iam::210987654321:role/nstance-fleet', external_id: 'tenant-42' })),
    'config.jsonc',
  );

  it("prints both sides: the role's trust with sts:ExternalId, the operator's sts:AssumeRole on that role only", async () => {
    const docs = crossAccountDocuments(crossConfig, { operatorPrincipal: 'arn:aws:iam::111111111111:role/nstance-worker' });
    expect(docs?.roleTrustPolicy.Statement).toEqual([
      { Sid: 'NstanceOperator', Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::111111111111:role/nstance-worker' }, Action: ['sts:AssumeRole'], Condition: { StringEquals: { 'sts:ExternalId': 'tenant-42', 'aws:RequestedRegion': REGION } } },
    ]);
    const { operatorPolicy, roleTrustPolicy } = docs as NonNullable<typeof docs>;
    const assume = (role: string, externalId?: string, region = REGION) =>
      evaluate([{ action: 'sts:AssumeRole', resource: `arn:aws:iam::210987654321:role/${role}`, context: { 'aws:RequestedRegion': region, ...(externalId ? { 'sts:ExternalId': externalId } : {}) } }], [operatorPolicy], '210987654321', {
        principal: 'arn:aws:iam::111111111111:role/nstance-worker',
        resourcePolicy: roleTrustPolicy,
      });
    const results = await Promise.all([
      assume('nstance-fleet', 'tenant-42'),
      assume('nstance-fleet', 'tenant-43'),
      assume('nstance-fleet'),
      assume('admin', 'tenant-42'),
      assume('nstance-fleet', 'tenant-42', 'eu-west-1'),
    ]);
    // The right ExternalId passes; a wrong or missing one does not; nor may the operator assume any other role,
    // nor ask STS of another region than the shard's (the worker and `config apply` ask the shard region's endpoint).
    expect(results.map(([v]) => v.result)).toEqual(['Allowed', 'ImplicitlyDenied', 'ImplicitlyDenied', 'ImplicitlyDenied', 'ImplicitlyDenied']);
    expect(operatorPolicy.Statement[0]?.Condition).toEqual({ StringEquals: { 'aws:RequestedRegion': REGION } });
  });

  it('`nstance iam policy --cross-account --json` prints the role trust and the operator policy, the worker role trust (EC2 only); --agent the empty agent policy; the text output heads each', async () => {
    const file = `${require('node:os').tmpdir()}/iam-cross-${process.pid}.jsonc`;
    require('node:fs').writeFileSync(file, JSON.stringify(crossConfig));
    const out = await runCli('iam', 'policy', '-f', file, '--json', '--cross-account', '--agent');
    expect(out.stderr).toBe('');
    const report = JSON.parse(out.stdout);
    expect(report.crossAccount.roleTrustPolicy.Statement[0].Condition).toEqual({ StringEquals: { 'sts:ExternalId': 'tenant-42', 'aws:RequestedRegion': REGION } });
    expect(report.crossAccount.operatorPolicy.Statement[0]).toMatchObject({ Action: ['sts:AssumeRole'], Resource: ['arn:aws:iam::210987654321:role/nstance-fleet'] });
    expect(report.agentPolicy).toEqual({ Version: '2012-10-17', Statement: [] });
    // The worker role (and the agent's, with --agent) is assumed by EC2 through its instance profile, and by nothing else.
    const ec2Trust = { Version: '2012-10-17', Statement: [{ Sid: 'WorkersOnEc2', Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: ['sts:AssumeRole'] }] };
    expect(report.workerTrustPolicy).toEqual(ec2Trust);
    expect(report.agentTrustPolicy).toEqual(ec2Trust);
    const text = await runCli('iam', 'policy', '-f', examplePath);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/# worker role policy \(account 123456789012, region us-east-1\)/);
    expect(text.stdout).toMatch(/# actions that accept no resource ARN/);
    // The text output prints the trust policy under its own heading, as the JSON document itself.
    const trustSection = /^# worker role trust policy\n([\s\S]*?)\n(?=# |$)/m.exec(text.stdout);
    expect(trustSection).not.toBeNull();
    expect(JSON.parse((trustSection as RegExpExecArray)[1])).toEqual(ec2Trust);
  });
});

describe('the integration proof (proveCallsAllowed)', () => {
  it('passes calls the policy allows and fails naming each call it does not', async () => {
    const { proveCallsAllowed } = await import('../support/iam-proof');
    const record = (command: string, input: Record<string, unknown>, caller: 'worker' | 'operator' | 'test' = 'worker') => ({ command, input, at: 0, outcome: 'ok' as const, caller, auth: authRequestsOf(command, input, scope, facts) });
    const good = [record('GetObject', { Bucket: bucket, Key: `shard/${shard}/config.jsonc` }), record('TerminateInstances', { InstanceIds: ['i-ours'] })];
    await expect(proveCallsAllowed(good, [config])).resolves.toMatchObject({
      requests: 2,
      distinct: 2,
      // Which statement allowed what: the "nothing more" check's input (iam-usage.ts).
      used: { ConfigStateAndAudit: ['s3:GetObject'], TerminateOwnInstances: ['ec2:TerminateInstances'] },
    });
    // The zone check is the operator's (config apply): allowed as theirs, refused as the worker's.
    const zones = record('DescribeAvailabilityZones', { Filters: [{ Name: 'zone-id', Values: ['use1-az1'] }] }, 'operator');
    await expect(proveCallsAllowed([zones], [config])).resolves.toMatchObject({ used: { ConfigApplyZoneCheck: ['ec2:DescribeAvailabilityZones'] } });
    await expect(proveCallsAllowed([{ ...zones, caller: 'worker' }], [config])).rejects.toThrow(/ec2:DescribeAvailabilityZones on \*: ImplicitlyDenied/);
    // The test's own calls through shared clients are judged like the worker's, but never count as its use.
    const testsOwn = record('ListObjectsV2', { Bucket: bucket, Prefix: `shard/${shard}/instance/` }, 'test');
    await expect(proveCallsAllowed([...good, testsOwn], [config])).resolves.toEqual(expect.objectContaining({ requests: 3, used: { ConfigStateAndAudit: ['s3:GetObject'], TerminateOwnInstances: ['ec2:TerminateInstances'] } }));
    await expect(proveCallsAllowed([record('TerminateInstances', { InstanceIds: ['i-untagged'] }, 'test')], [config])).rejects.toThrow(/i-untagged: ImplicitlyDenied/);
    const bad = [...good, record('TerminateInstances', { InstanceIds: ['i-untagged'] })];
    await expect(proveCallsAllowed(bad, [config])).rejects.toThrow(/1 of 3 distinct AWS requests .*\n.*ec2:TerminateInstances on arn:aws:ec2:us-east-1:123456789012:instance\/i-untagged: ImplicitlyDenied/);
  });
});

/** [what, cluster.secrets, call]: what each store's policy must refuse. */
const storeDenied: [string, Record<string, unknown>, Call][] = [
  ['Parameter Store: a parameter outside the prefix', { provider: 'aws-parameter-store' }, ['', 'GetParameter', { Name: '/prod/database-password', WithDecryption: true }]],
  ['Parameter Store: a parameter of another cluster (each cluster given its own prefix)', { provider: 'aws-parameter-store', prefix: '/nstance/demo/' }, ['', 'GetParameter', { Name: '/nstance/prod/ca-key', WithDecryption: true }]],
  ['Parameter Store: writing a parameter outside the prefix', { provider: 'aws-parameter-store', prefix: '/fleet/demo/' }, ['', 'PutParameter', { Name: '/fleet/other/ca-key', Type: 'SecureString' }]],
  ['Parameter Store: deleting a parameter (only the operator)', { provider: 'aws-parameter-store' }, ['', 'DeleteParameter', { Name: '/nstance/ca-key' }]],
  ['Parameter Store: a secret in Secrets Manager', { provider: 'aws-parameter-store' }, ['', 'GetSecretValue', { SecretId: 'nstance/ca-key' }]],
  ['Secrets Manager: a secret outside a configured prefix', { provider: 'aws-secrets-manager', prefix: 'fleet/demo/' }, ['', 'GetSecretValue', { SecretId: 'fleet/other/ca-key' }]],
  ['Secrets Manager: a parameter', { provider: 'aws-secrets-manager' }, ['', 'GetParameter', { Name: '/nstance/ca-key' }]],
  ['object storage: an object under cluster/ outside cluster/secret/', { provider: 'object-storage', encryption_key: { provider: 'env', source: 'K' } }, ['', 'GetObject', { Bucket: bucket, Key: 'cluster/backup/ca-key' }]],
  ['object storage: writing under cluster/ outside cluster/secret/', { provider: 'object-storage', encryption_key: { provider: 'env', source: 'K' } }, ['', 'PutObject', { Bucket: bucket, Key: 'cluster/other/x' }]],
  ['object storage: listing cluster/ outside cluster/secret/', { provider: 'object-storage', encryption_key: { provider: 'env', source: 'K' } }, ['', 'ListObjectsV2', { Bucket: bucket, Prefix: 'cluster/' }]],
  ['object storage: a secret outside a configured prefix', { provider: 'object-storage', prefix: 'team/', encryption_key: { provider: 'env', source: 'K' } }, ['', 'GetObject', { Bucket: bucket, Key: 'cluster/secret/ca-key' }]],
  ['object storage: deleting a secret (only the operator)', { provider: 'object-storage', encryption_key: { provider: 'env', source: 'K' } }, ['', 'DeleteObject', { Bucket: bucket, Key: 'cluster/secret/ca-key' }]],
  ['object storage: a secret in Secrets Manager', { provider: 'object-storage', encryption_key: { provider: 'env', source: 'K' } }, ['', 'GetSecretValue', { SecretId: 'nstance/demo/ca-key' }]],
  // prefix "" is Go's unset value: Nstance's default applies, never "every secret".
  ['Secrets Manager with prefix "": a secret outside nstance/', { provider: 'aws-secrets-manager', prefix: '' }, ['', 'GetSecretValue', { SecretId: 'prod/database-password' }]],
  ['Parameter Store with prefix "": a parameter outside /nstance/', { provider: 'aws-parameter-store', prefix: '' }, ['', 'GetParameter', { Name: '/prod/database-password', WithDecryption: true }]],
  ['object storage with prefix "": an object under cluster/ outside cluster/secret/', { provider: 'object-storage', prefix: '', encryption_key: { provider: 'env', source: 'K' } }, ['', 'GetObject', { Bucket: bucket, Key: 'cluster/backup/ca-key' }]],
  ['object storage: another bucket\'s secrets', { provider: 'object-storage', encryption_key: { provider: 'env', source: 'K' } }, ['', 'GetObject', { Bucket: 'someone-elses-bucket', Key: 'cluster/secret/ca-key' }]],
];

describe('secret stores other than Secrets Manager, and keys kept in AWS', () => {
  const verdicts = async (cfg: ReturnType<typeof parseConfigText>, call: Call) => evaluate(authRequestsOf(call[1], call[2], scope, facts) ?? [], [workerPolicy(cfg)], ACCOUNT);
  const allowedBy = async (cfg: ReturnType<typeof parseConfigText>, call: Call) => (await verdicts(cfg, call)).every((v) => v.result === 'Allowed');

  test("Parameter Store: SecureStrings under Nstance's default prefix /nstance/ only, listed with DescribeParameters", async () => {
    const cfg = parseConfigText(exampleWith((c) => setPath(c, 'cluster.secrets', { provider: 'aws-parameter-store' })), 'config.jsonc');
    expect(await allowedBy(cfg, ['', 'GetParameter', { Name: '/nstance/ca-key', WithDecryption: true }])).toBe(true);
    expect(await allowedBy(cfg, ['', 'PutParameter', { Name: '/nstance/registration-key', Type: 'SecureString' }])).toBe(true);
    expect(await allowedBy(cfg, ['', 'DescribeParameters', {}])).toBe(true);
    expect(await allowedBy(cfg, ['', 'GetParameter', { Name: '/prod/ca-key' }])).toBe(false);
    expect(await allowedBy(cfg, ['', 'GetParameter', { Name: '/nstancex/ca-key' }])).toBe(false);
    expect(await allowedBy(cfg, ['', 'GetSecretValue', { SecretId: 'nstance/ca-key' }])).toBe(false);
  });

  test("Secrets Manager with no prefix given: scoped to Nstance's default nstance/, never every secret", async () => {
    const cfg = parseConfigText(exampleWith((c) => setPath(c, 'cluster.secrets', { provider: 'aws-secrets-manager' })), 'config.jsonc');
    expect(await allowedBy(cfg, ['', 'GetSecretValue', { SecretId: 'nstance/ca-key' }])).toBe(true);
    expect(await allowedBy(cfg, ['', 'GetSecretValue', { SecretId: 'nstancex/ca-key' }])).toBe(false);
    expect(await allowedBy(cfg, ['', 'GetSecretValue', { SecretId: 'prod/database-password' }])).toBe(false);
  });

  test('object storage: secrets under cluster/, the encryption key and the old keys read where they are kept, nothing else', async () => {
    const cfg = parseConfigText(
      exampleWith((c) =>
        setPath(c, 'cluster.secrets', {
          provider: 'object-storage',
          encryption_key: { provider: 'aws-parameter-store', source: '/keys/nstance-new' },
          old_encryption_keys: [{ provider: 'aws-secrets-manager', source: 'keys/nstance-old' }],
        }),
      ),
      'config.jsonc',
    );
    expect(await allowedBy(cfg, ['', 'PutObject', { Bucket: bucket, Key: 'cluster/secret/ca-key' }])).toBe(true);
    expect(await allowedBy(cfg, ['', 'ListObjectsV2', { Bucket: bucket, Prefix: 'cluster/secret/' }])).toBe(true);
    expect(await allowedBy(cfg, ['', 'GetParameter', { Name: '/keys/nstance-new', WithDecryption: true }])).toBe(true);
    expect(await allowedBy(cfg, ['', 'GetSecretValue', { SecretId: 'keys/nstance-old' }])).toBe(true);
    expect(await allowedBy(cfg, ['', 'GetParameter', { Name: '/keys/someone-elses' }])).toBe(false);
    expect(await allowedBy(cfg, ['', 'GetSecretValue', { SecretId: 'nstance/demo/ca-key' }])).toBe(false);
    // The CA certificate and the store's own prefix are all of cluster/ it may touch.
    expect(await allowedBy(cfg, ['', 'GetObject', { Bucket: bucket, Key: 'cluster/ca.crt' }])).toBe(true);
    expect(await allowedBy(cfg, ['', 'ListObjectsV2', { Bucket: bucket, Prefix: 'cluster/secret/files/default/web/' }])).toBe(true);
  });

  test('storage files: GetObject on each source, under its literal beginning when it is rendered per instance, and no other key', async () => {
    const cfg = parseConfigText(
      exampleWith((c) =>
        setPath(c, 'templates.web.files', {
          '/etc/motd': { kind: 'storage', source: 'files/motd.txt' },
          '/etc/app/app.conf': { kind: 'storage', source: 'files/{{ .Group }}/app.conf' },
        }),
      ),
      'config.jsonc',
    );
    expect(await allowedBy(cfg, ['', 'GetObject', { Bucket: bucket, Key: 'files/motd.txt' }])).toBe(true);
    expect(await allowedBy(cfg, ['', 'GetObject', { Bucket: bucket, Key: 'files/default/web/app.conf' }])).toBe(true);
    expect(await allowedBy(cfg, ['', 'GetObject', { Bucket: bucket, Key: 'other/motd.txt' }])).toBe(false);
    expect(await allowedBy(cfg, ['', 'PutObject', { Bucket: bucket, Key: 'files/motd.txt' }])).toBe(false);
    // Without storage files, no bucket key outside the project's own is readable.
    expect(await allowedBy(config, ['', 'GetObject', { Bucket: bucket, Key: 'files/motd.txt' }])).toBe(false);
  });

  it.each(storeDenied)('denies: %s', async (_what, secrets, call) => {
    const cfg = parseConfigText(exampleWith((c) => setPath(c, 'cluster.secrets', secrets)), 'config.jsonc');
    const found = await verdicts(cfg, call);
    expect(found.length).toBeGreaterThan(0);
    expect(found.filter((v) => v.result.startsWith('simulator error'))).toEqual([]);
    expect(found.some((v) => v.result !== 'Allowed')).toBe(true);
  });
});
