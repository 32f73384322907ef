/**
 * RunInstances args that make EC2 authorise a launch on more resource types (common/iam/launch-args.ts):
 * spot requests, placement groups, capacity reservations and tagged interfaces or spot requests are
 * granted exactly when the config uses them, evaluated by the policy simulator through the same recorder
 * the integration proof uses (test/support/iam-calls.ts); the args the policy cannot grant are refused by
 * `config validate`, `config apply`, `plan` and `nstance iam policy`, naming the field.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigValidationError, parseConfigText } from '../../common/config';
import { iamReport } from '../../common/iam/documents';
import { checkLaunchArgsGrantable, refusedLaunchArgs } from '../../common/iam/launch-args';
import { workerPolicy } from '../../common/iam/policy';
import { TAG } from '../../common/names';
import { authRequestsOf, type ResourceFacts } from '../support/iam-calls';
import { describeVerdict, evaluate } from '../support/iam-proof';
import { runCli } from '../support/cli';
import { exampleWith, setPath } from './config/example';

const ACCOUNT = '123456789012';
const scope = { region: 'us-east-1', account: ACCOUNT };
const facts: ResourceFacts = { tagsOf: () => undefined, attachment: () => undefined };
const tags = (t: Record<string, string>) => Object.entries(t).map(([Key, Value]) => ({ Key, Value }));

const plain = parseConfigText(exampleWith(), 'config.jsonc');
const ours = { [TAG.clusterId]: 'demo', [TAG.shard]: plain.shard.id, [TAG.managed]: 'true', [TAG.instanceId]: 'web-abc' };
const optioned = parseConfigText(
  exampleWith((c) =>
    setPath(c, 'templates.web.args', {
      ImageId: '{{ .Image.al2023arm }}',
      InstanceMarketOptions: { MarketType: 'spot', SpotOptions: { SpotInstanceType: 'one-time' } },
      Placement: { GroupName: 'web-spread' },
      CapacityReservationSpecification: { CapacityReservationTarget: { CapacityReservationId: 'cr-0123456789abcdef0' } },
      TagSpecifications: [
        { ResourceType: 'spot-instances-request', Tags: [{ Key: 'team', Value: 'web' }] },
        { ResourceType: 'network-interface', Tags: [{ Key: 'team', Value: 'web' }] },
      ],
    }),
  ),
  'config.jsonc',
);

const spotOnly = parseConfigText(exampleWith((c) => setPath(c, 'templates.web.args.InstanceMarketOptions', { MarketType: 'spot' })), 'config.jsonc');

/** A launch as buildRunInstancesInput sends it for `args` (the example's subnet, group and profile). */
const launch = (args: Record<string, unknown> = {}, extraSpecs: { ResourceType: string; Tags: { Key: string; Value: string }[] }[] = []) => ({
  ImageId: 'ami-0123',
  InstanceType: 'm7g.large',
  SubnetId: plain.shard.subnet_pools.private[0],
  SecurityGroupIds: ['sg-0123456789abcdef0'],
  IamInstanceProfile: { Arn: `arn:aws:iam::${ACCOUNT}:instance-profile/nstance-agent` },
  MinCount: 1,
  MaxCount: 1,
  TagSpecifications: [{ ResourceType: 'instance', Tags: tags(ours) }, { ResourceType: 'volume', Tags: tags(ours) }, ...extraSpecs],
  ...args,
});
const spot = { InstanceMarketOptions: { MarketType: 'spot' } };
const spotTags = { ResourceType: 'spot-instances-request', Tags: tags({ team: 'web' }) };
const eniTags = { ResourceType: 'network-interface', Tags: tags({ team: 'web' }) };

async function refusals(config: typeof plain, input: Record<string, unknown>): Promise<string[]> {
  const requests = authRequestsOf('RunInstances', input, scope, facts) ?? [];
  expect(requests.length).toBeGreaterThan(0);
  const verdicts = await evaluate(requests, [workerPolicy(config, { account: ACCOUNT })], ACCOUNT);
  expect(verdicts.filter((v) => v.result.startsWith('simulator error'))).toEqual([]);
  return verdicts.filter((v) => v.result !== 'Allowed').map(describeVerdict);
}

/** [what, config, launch, the resource the refusal names (none: allowed)] */
const rows: [string, typeof plain, Record<string, unknown>, RegExp | undefined][] = [
  ['a spot launch, its spot request tagged as args say', optioned, launch({ ...spot, Placement: { GroupName: 'web-spread' } }, [spotTags, eniTags]), undefined],
  ['a launch into the reservation args target', optioned, launch({ CapacityReservationSpecification: { CapacityReservationTarget: { CapacityReservationId: 'cr-0123456789abcdef0' } } }), undefined],
  ['a spot launch when no layer asks for spot', plain, launch(spot), /ec2:RunInstances on [^ ]+:spot-instances-request\/.*ImplicitlyDenied/],
  ['a launch into another placement group', optioned, launch({ Placement: { GroupName: 'someone-elses' } }), /placement-group\/someone-elses.*ImplicitlyDenied/],
  ['a launch into a placement group when args name none', plain, launch({ Placement: { GroupName: 'web-spread' } }), /placement-group\/web-spread.*ImplicitlyDenied/],
  ['a launch into another capacity reservation', optioned, launch({ CapacityReservationSpecification: { CapacityReservationTarget: { CapacityReservationId: 'cr-0fffffffffffffff0' } } }), /capacity-reservation\/cr-0fffffffffffffff0.*ImplicitlyDenied/],
  ['tagging the spot request when args do not tag it', spotOnly, launch(spot, [spotTags]), /ec2:CreateTags on [^ ]+:spot-instances-request\/.*ImplicitlyDenied/],
  ['tagging the network interface when args do not tag it', plain, launch({}, [eniTags]), /ec2:CreateTags on [^ ]+:network-interface\/.*ImplicitlyDenied/],
  ['a launch from a launch template (refused in config, and by the policy)', optioned, launch({ LaunchTemplate: { LaunchTemplateId: 'lt-0123' } }), /launch-template\/lt-0123.*ImplicitlyDenied/],
  ['a launch with another network interface subnet', optioned, launch({ NetworkInterfaces: [{ DeviceIndex: 1, SubnetId: 'subnet-0elsewhere' }] }), /subnet\/subnet-0elsewhere.*ImplicitlyDenied/],
];

describe('launch options in args, evaluated by iam-simulate', () => {
  it.each(rows)('%s', async (_what, config, input, refused) => {
    const found = await refusals(config, input);
    if (refused === undefined) expect(found).toEqual([]);
    else expect(found).toEqual([expect.stringMatching(refused)]);
  });

  it('grants each option on exactly its resources, and nothing for a config without them', () => {
    const sids = (config: typeof plain) => workerPolicy(config, { account: ACCOUNT }).Statement.map((s) => s.Sid);
    for (const sid of ['LaunchSpotRequests', 'LaunchIntoPlacementGroups', 'LaunchIntoCapacityReservations']) expect(sids(plain)).not.toContain(sid);
    const statement = (sid: string) => workerPolicy(optioned, { account: ACCOUNT }).Statement.find((s) => s.Sid === sid);
    expect(statement('LaunchSpotRequests')?.Resource).toEqual([`arn:aws:ec2:us-east-1:${ACCOUNT}:spot-instances-request/*`]);
    expect(statement('LaunchIntoPlacementGroups')?.Resource).toEqual([`arn:aws:ec2:us-east-1:${ACCOUNT}:placement-group/web-spread`]);
    expect(statement('LaunchIntoCapacityReservations')?.Resource).toEqual([`arn:aws:ec2:us-east-1:${ACCOUNT}:capacity-reservation/cr-0123456789abcdef0`]);
    expect(statement('TagOnLaunchOnly')?.Resource).toEqual(
      ['instance', 'volume', 'network-interface', 'spot-instances-request'].map((type) => `arn:aws:ec2:us-east-1:${ACCOUNT}:${type}/*`),
    );
    expect(iamReport(optioned).notes.join('\n')).toMatch(/AWSServiceRoleForEC2Spot/);
    // A name rendered per launch: every placement group of the account and region.
    const rendered = parseConfigText(exampleWith((c) => setPath(c, 'templates.web.args.Placement', { GroupName: 'web-{{ .Vars.Environment }}' })), 'config.jsonc');
    expect(workerPolicy(rendered, { account: ACCOUNT }).Statement.find((s) => s.Sid === 'LaunchIntoPlacementGroups')?.Resource).toEqual([`arn:aws:ec2:us-east-1:${ACCOUNT}:placement-group/*`]);
  });
});

describe('args the generated policy cannot grant', () => {
  const cases: [string, string, unknown, string][] = [
    ['a launch template', 'templates.web.args.LaunchTemplate', { LaunchTemplateId: 'lt-0123' }, 'templates.web.args.LaunchTemplate'],
    ['network interfaces', 'defaults.args.NetworkInterfaces', [{ DeviceIndex: 0, AssociatePublicIpAddress: true }], 'defaults.args.NetworkInterfaces'],
    ['license specifications', 'groups.default.web.args.LicenseSpecifications', [{ LicenseConfigurationArn: `arn:aws:license-manager:us-east-1:${ACCOUNT}:license-configuration:lic-0123` }], 'groups.default.web.args.LicenseSpecifications'],
    ['a capacity block', 'templates.web.args.InstanceMarketOptions', { MarketType: 'capacity-block' }, 'templates.web.args.InstanceMarketOptions.MarketType'],
    ['a placement group by id', 'templates.web.args.Placement', { GroupId: 'pg-0123' }, 'templates.web.args.Placement.GroupId'],
    ['a dedicated host', 'templates.web.args.Placement', { Tenancy: 'host', HostId: 'h-0123' }, 'templates.web.args.Placement.HostId'],
    ['a capacity reservation group', 'templates.web.args.CapacityReservationSpecification', { CapacityReservationTarget: { CapacityReservationResourceGroupArn: 'arn:aws:resource-groups:us-east-1:123456789012:group/crg' } }, 'templates.web.args.CapacityReservationSpecification.CapacityReservationTarget.CapacityReservationResourceGroupArn'],
  ];

  it.each(cases)('%s: refused naming %s', (_what, at, value, named) => {
    const config = parseConfigText(exampleWith((c) => setPath(c, at, value)), 'config.jsonc');
    expect(refusedLaunchArgs(config).map((r) => r.path)).toEqual([named]);
    let thrown: unknown;
    try {
      checkLaunchArgsGrantable(config, 'config.jsonc');
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ConfigValidationError);
    expect((thrown as Error).message).toMatch(new RegExp(`^config\\.jsonc: ${named.replace(/\./g, '\\.')}: not supported: `));
  });

  it('spot, a placement group by name and a targeted reservation are not refused', () => {
    expect(refusedLaunchArgs(optioned)).toEqual([]);
    expect(refusedLaunchArgs(plain)).toEqual([]);
  });

  it('`nstance iam policy` and `nstance config validate` refuse a config with a launch template, naming the field', async () => {
    const file = path.join(os.tmpdir(), `iam-launch-template-${process.pid}.jsonc`);
    fs.writeFileSync(file, exampleWith((c) => setPath(c, 'templates.web.args.LaunchTemplate', { LaunchTemplateName: 'web' })));
    try {
      for (const args of [['iam', 'policy', '-f', file], ['config', 'validate', '-f', file]]) {
        const out = await runCli(...args);
        expect(out.code).not.toBe(0);
        expect(out.stdout).toBe('');
        expect(out.stderr).toMatch(/templates\.web\.args\.LaunchTemplate: not supported: a launch template's contents/);
      }
    } finally {
      fs.rmSync(file, { force: true });
    }
  });
});
