import { mergeArgs, parseConfigText, resolveGroup, resolveGroups } from '../../../common/config';
import { exampleText, exampleWith, setPath } from './example';

describe('resolveGroups on the example', () => {
  it('flattens the one static group', () => {
    const config = parseConfigText(exampleText, 'config.jsonc');
    const groups = resolveGroups(config);
    expect(groups).toHaveLength(1);
    const [web] = groups;
    expect(web).toEqual({
      clusterId: 'demo',
      shard: 'use1-az1',
      tenant: 'default',
      group: 'web',
      size: 3,
      template: 'web',
      kind: 'web',
      arch: 'arm64',
      instanceType: 'm7g.large',
      subnetPool: 'private',
      subnetIds: ['subnet-0aaa', 'subnet-0bbb'],
      args: {
        SecurityGroupIds: ['sg-0123456789abcdef0'],
        IamInstanceProfile: { Arn: 'arn:aws:iam::123456789012:instance-profile/nstance-agent' },
        MetadataOptions: { HttpTokens: 'required', HttpEndpoint: 'enabled' },
        ImageId: '{{ .Image.al2023arm }}',
      },
      vars: { Environment: 'demo' },
      userdata: config.templates.web.userdata?.content,
      imageNames: ['al2023arm'],
      drainTimeoutMs: 120_000,
      loadBalancers: [
        {
          key: 'web',
          targetGroups: [{ arn: 'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef', targetPort: 443 }],
        },
      ],
      sizeSource: 'config',
    });
  });

  it('resolveGroup finds a group by name and returns undefined for unknown ones', () => {
    const config = parseConfigText(exampleText, 'config.jsonc');
    expect(resolveGroup(config, undefined, 'default', 'web')?.size).toBe(3);
    expect(resolveGroup(config, undefined, 'default', 'nope')).toBeUndefined();
    expect(resolveGroup(config, undefined, 'other', 'web')).toBeUndefined();
  });
});

describe('merge precedence: defaults → template → group', () => {
  const layered = exampleWith(
    (c) => setPath(c, 'defaults.args.KeyName', 'default-key'),
    (c) => setPath(c, 'defaults.args.BlockDeviceMappings', [{ DeviceName: '/dev/xvda', Ebs: { VolumeSize: 8 } }]),
    (c) => setPath(c, 'defaults.vars', { Environment: 'demo', Team: 'infra', Tier: 'default' }),
    (c) => setPath(c, 'templates.web.args.MetadataOptions', { HttpPutResponseHopLimit: 2 }),
    (c) => setPath(c, 'templates.web.args.BlockDeviceMappings', [
      { DeviceName: '/dev/xvda', Ebs: { VolumeSize: 20 } },
      { DeviceName: '/dev/xvdb', Ebs: { VolumeSize: 100 } },
    ]),
    (c) => setPath(c, 'templates.web.args.KeyName', 'template-key'),
    (c) => setPath(c, 'templates.web.vars', { Tier: 'template', Role: 'web' }),
    (c) => setPath(c, 'shard.subnet_pools.public', ['subnet-0ccc']),
    (c) => setPath(c, 'groups.default.canary', {
      template: 'web',
      size: 1,
      instance_type: 'm7g.xlarge',
      subnet_pool: 'public',
      args: { SecurityGroupIds: ['sg-canary'], BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { VolumeSize: 50 } }], MetadataOptions: { HttpTokens: 'optional' } },
      vars: { Tier: 'group' },
    }),
  );
  const config = parseConfigText(layered, 'config.jsonc');
  const byName = Object.fromEntries(resolveGroups(config).map((g) => [g.group, g]));

  it('later layers win; plain objects merge key by key', () => {
    expect(byName.canary.args.MetadataOptions).toEqual({ HttpTokens: 'optional', HttpEndpoint: 'enabled', HttpPutResponseHopLimit: 2 });
    expect(byName.web.args.MetadataOptions).toEqual({ HttpTokens: 'required', HttpEndpoint: 'enabled', HttpPutResponseHopLimit: 2 });
    expect(byName.web.args.KeyName).toBe('template-key');
    expect(byName.web.args.IamInstanceProfile).toEqual({ Arn: 'arn:aws:iam::123456789012:instance-profile/nstance-agent' });
  });

  it('arrays are replaced, not concatenated', () => {
    expect(byName.web.args.BlockDeviceMappings).toHaveLength(2);
    expect(byName.canary.args.BlockDeviceMappings).toEqual([{ DeviceName: '/dev/xvda', Ebs: { VolumeSize: 50 } }]);
    expect(byName.canary.args.SecurityGroupIds).toEqual(['sg-canary']);
    expect(byName.web.args.SecurityGroupIds).toEqual(['sg-0123456789abcdef0']);
  });

  it('vars merge the same way', () => {
    expect(byName.web.vars).toEqual({ Environment: 'demo', Team: 'infra', Tier: 'template', Role: 'web' });
    expect(byName.canary.vars).toEqual({ Environment: 'demo', Team: 'infra', Tier: 'group', Role: 'web' });
  });

  it('group fields override the template; shard defaults fill the rest', () => {
    expect(byName.canary.instanceType).toBe('m7g.xlarge');
    expect(byName.canary.subnetPool).toBe('public');
    expect(byName.canary.subnetIds).toEqual(['subnet-0ccc']);
    expect(byName.canary.drainTimeoutMs).toBe(300_000);
    expect(byName.canary.loadBalancers).toEqual([]);
    expect(byName.web.instanceType).toBe('m7g.large');
  });

  it('returns groups sorted by tenant then group', () => {
    expect(resolveGroups(config).map((g) => g.group)).toEqual(['canary', 'web']);
  });

  it('resolved args are copies: mutating them does not touch the config', () => {
    const again = resolveGroups(config);
    (again[0].args.SecurityGroupIds as string[]).push('sg-mutated');
    expect(config.groups.default.canary.args?.SecurityGroupIds).toEqual(['sg-canary']);
    expect(resolveGroups(config)[0].args.SecurityGroupIds).toEqual(['sg-canary']);
  });
});

describe('mergeArgs', () => {
  it('merges nested objects, replaces arrays and skips undefined layers', () => {
    expect(mergeArgs({ A: { b: 1, c: [1, 2] } }, undefined, { A: { c: [3] }, D: 'x' })).toEqual({ A: { b: 1, c: [3] }, D: 'x' });
  });

  it('a scalar replaces an object and vice versa', () => {
    expect(mergeArgs({ A: { b: 1 } }, { A: 'flat' })).toEqual({ A: 'flat' });
    expect(mergeArgs({ A: 'flat' }, { A: { b: 1 } })).toEqual({ A: { b: 1 } });
  });

  it('does not mutate its inputs', () => {
    const a = { X: { y: 1 } };
    const b = { X: { z: 2 } };
    mergeArgs(a, b);
    expect(a).toEqual({ X: { y: 1 } });
    expect(b).toEqual({ X: { z: 2 } });
  });

  it('requires IMDSv2 when no layer mentions MetadataOptions', () => {
    const config = parseConfigText(exampleWith((c) => setPath(c, 'defaults.args', {})), 'c.jsonc');
    expect(resolveGroups(config)[0].args.MetadataOptions).toEqual({ HttpTokens: 'required' });
  });
});
