import { configErrorOf, deletePath, exampleText, exampleWith, setPath } from './example';

type Node = Record<string, unknown>;
const set = (path: string, value: unknown) => (c: Node) => void setPath(c, path, value);
const del = (path: string) => (c: Node) => void deletePath(c, path);

interface Case {
  name: string;
  text: string;
  file?: string;
  /** Expected `<path>` of the issue; '' for file-level issues such as syntax errors. */
  path: string;
  /** Fragment the message must contain. */
  says: string;
}

const secondTemplate = { kind: 'web', arch: 'amd64', instance_type: 'm7i.large', subnet_pool: 'private' };

const cases: Case[] = [
  { name: 'unknown template', text: exampleWith(set('groups.default.web.template', 'wbe')), path: 'groups.default.web.template', says: 'unknown template "wbe"; defined templates: web' },
  { name: 'bad duration', text: exampleWith(set('shard.default_drain_timeout', '5 minutes')), path: 'shard.default_drain_timeout', says: 'invalid duration "5 minutes"' },
  { name: 'zero health check interval', text: exampleWith(set('shard.health_check_interval', '0s')), path: 'shard.health_check_interval', says: 'must be at least 1s (got "0s")' },
  { name: 'sub-second gc interval', text: exampleWith(set('shard.garbage_collection.interval', '10ms')), path: 'shard.garbage_collection.interval', says: 'must be at least 1s' },
  { name: 'bad group drain_timeout', text: exampleWith(set('groups.default.web.drain_timeout', '2')), path: 'groups.default.web.drain_timeout', says: 'missing unit' },
  { name: 'negative size', text: exampleWith(set('groups.default.web.size', -1)), path: 'groups.default.web.size', says: 'integer from 0 to 5000, got -1' },
  { name: 'fractional size', text: exampleWith(set('groups.default.web.size', 1.5)), path: 'groups.default.web.size', says: 'got 1.5' },
  { name: 'string size', text: exampleWith(set('groups.default.web.size', '3')), path: 'groups.default.web.size', says: 'remove the quotes' },
  { name: 'size too big', text: exampleWith(set('groups.default.web.size', 5001)), path: 'groups.default.web.size', says: 'got 5001' },
  { name: 'missing size', text: exampleWith(del('groups.default.web.size')), path: 'groups.default.web.size', says: 'required field is missing' },
  { name: 'max_surge not a count or percentage', text: exampleWith(set('groups.default.web.max_surge', '10')), path: 'groups.default.web.max_surge', says: 'a percentage of the group\'s size from "0%" to "100%"' },
  { name: 'max_surge over 100%', text: exampleWith(set('groups.default.web.max_surge', '150%')), path: 'groups.default.web.max_surge', says: 'got "150%"' },
  { name: 'negative max_unavailable', text: exampleWith(set('groups.default.web.max_unavailable', -1)), path: 'groups.default.web.max_unavailable', says: 'must be a whole number' },
  { name: 'no surge and no unavailability', text: exampleWith(set('groups.default.web.max_surge', 0)), path: 'groups.default.web.max_surge', says: 'leaves no way to replace a member' },
  { name: 'kind too long', text: exampleWith(set('templates.web.kind', 'webs')), path: 'templates.web.kind', says: 'exactly 3 lowercase letters or digits' },
  { name: 'kind starting with a digit', text: exampleWith(set('templates.web.kind', '1ab')), path: 'templates.web.kind', says: 'starting with a letter' },
  { name: 'bad arch', text: exampleWith(set('templates.web.arch', 'x86_64')), path: 'templates.web.arch', says: 'must be "amd64" or "arm64", got "x86_64"' },
  { name: 'unknown top-level field', text: exampleWith(set('group', {})), path: 'group', says: 'unknown field "group" (did you mean "groups"?); allowed fields: cluster, shard, images' },
  { name: 'unknown nested field', text: exampleWith(set('shard.expiry.eligble_age', '1h')), path: 'shard.expiry.eligble_age', says: 'allowed fields: eligible_age, forced_age' },
  { name: 'typo in group field', text: exampleWith(set('groups.default.web.drain_timout', '1m')), path: 'groups.default.web.drain_timout', says: 'did you mean "drain_timeout"?' },
  { name: 'missing cluster.id', text: exampleWith(del('cluster.id')), path: 'cluster.id', says: 'required field is missing' },
  { name: 'bad cluster id', text: exampleWith(set('cluster.id', 'Demo_1')), path: 'cluster.id', says: 'lowercase letters, digits and "-"' },
  { name: 'bad storage endpoint', text: exampleWith(set('cluster.storage.endpoint', 'localhost:4566')), path: 'cluster.storage.endpoint', says: 'expected an http(s) URL' },
  { name: 'bad storage provider', text: exampleWith(set('cluster.storage.provider', 'gcs')), path: 'cluster.storage.provider', says: 'must be "s3"' },
  { name: 'template subnet pool missing', text: exampleWith(set('templates.web.subnet_pool', 'public')), path: 'templates.web.subnet_pool', says: 'unknown subnet pool "public"; defined pools in shard.subnet_pools: private' },
  { name: 'group subnet pool missing', text: exampleWith(set('groups.default.web.subnet_pool', 'privat')), path: 'groups.default.web.subnet_pool', says: 'did you mean "private"?' },
  { name: 'empty subnet pool', text: exampleWith(set('shard.subnet_pools.private', [])), path: 'shard.subnet_pools.private', says: 'at least one subnet' },
  { name: 'bad subnet id', text: exampleWith(set('shard.subnet_pools.private', ['subnet-0aaa', 'sn-1'])), path: 'shard.subnet_pools.private[1]', says: 'invalid subnet id "sn-1"' },
  { name: 'duplicate subnet', text: exampleWith(set('shard.subnet_pools.private', ['subnet-0aaa', 'subnet-0aaa'])), path: 'shard.subnet_pools.private[1]', says: 'duplicate subnet' },
  { name: 'unknown load balancer', text: exampleWith(set('groups.default.web.load_balancers', ['web', 'api'])), path: 'groups.default.web.load_balancers[1]', says: 'unknown load balancer "api"; defined load_balancers: web' },
  { name: 'target_port out of range', text: exampleWith(set('load_balancers.web.target_groups', [{ arn: 'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef', target_port: 70000 }])), path: 'load_balancers.web.target_groups[0].target_port', says: 'port number from 1 to 65535, got 70000' },
  { name: 'bad target group arn', text: exampleWith(set('load_balancers.web.target_groups', [{ arn: 'web-tg', target_port: 443 }])), path: 'load_balancers.web.target_groups[0].arn', says: 'invalid target group ARN "web-tg"' },
  { name: 'undefined image in args', text: exampleWith(set('templates.web.args.ImageId', '{{ .Image.al2023 }}')), path: 'templates.web.args.ImageId', says: 'unknown image "al2023"; defined images: al2023arm' },
  { name: 'undefined image deep in group args', text: exampleWith(set('groups.default.web.args', { BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { SnapshotId: '{{ .Image.nope }}' } }] })), path: 'groups.default.web.args.BlockDeviceMappings[0].Ebs.SnapshotId', says: 'unknown image "nope"' },
  { name: 'an image id in a file', text: exampleWith(set('templates.web.files', { '/etc/app/image': { kind: 'string', template: '{{ .Image.al2023arm }}' } })), path: 'templates.web.files["/etc/app/image"].template', says: 'image ids are not available to files' },
  { name: 'undefined image in userdata', text: exampleWith(set('templates.web.userdata.content', 'echo {{ .Image.x86 }}')), path: 'templates.web.userdata.content', says: 'unknown image "x86"' },
  { name: 'unknown template root', text: exampleWith(set('templates.web.userdata.content', 'echo {{ .Foo.Bar }}')), path: 'templates.web.userdata.content', says: 'unknown template reference {{ .Foo.Bar }}' },
  { name: 'unknown template field', text: exampleWith(set('templates.web.userdata.content', 'echo {{ .Instance.Foo }}')), path: 'templates.web.userdata.content', says: 'write one of {{ .Instance.ID }}, {{ .Instance.Kind }}, {{ .Instance.Type }}' },
  { name: 'misspelt template field', text: exampleWith(set('templates.web.userdata.content', 'echo {{ .Server.CACrt }}')), path: 'templates.web.userdata.content', says: 'did you mean .Server.CACert?' },
  { name: 'template root without its field', text: exampleWith(set('templates.web.userdata.content', 'echo {{ .Server }}')), path: 'templates.web.userdata.content', says: '{{ .Server.RegistrationAddr }}' },
  { name: 'field on a value', text: exampleWith(set('templates.web.userdata.content', 'echo {{ .Group.Name }}')), path: 'templates.web.userdata.content', says: '.Group has no fields' },
  { name: 'list argument given as a string', text: exampleWith(set('defaults.args.SecurityGroupIds', 'sg-0abc')), path: 'defaults.args.SecurityGroupIds', says: 'SecurityGroupIds must be a list, e.g. ["…"], got "sg-0abc"' },
  { name: 'boolean argument given as a string', text: exampleWith(set('templates.web.args.EbsOptimized', 'yes')), path: 'templates.web.args.EbsOptimized', says: 'EbsOptimized must be true or false' },
  { name: 'no image anywhere', text: exampleWith(del('templates.web.args.ImageId')), path: 'groups.default.web.args.ImageId', says: 'launches without an image: set args.ImageId' },
  { name: 'unsupported template syntax', text: exampleWith(set('templates.web.userdata.content', '{{ if .Nonce }}x{{ end }}')), path: 'templates.web.userdata.content', says: 'unsupported template syntax "{{ if .Nonce }}"' },
  { name: 'undefined var', text: exampleWith(set('templates.web.userdata.content', 'echo {{ .Vars.Region }}')), path: 'groups.default.web.vars', says: 'no var "Region"' },
  { name: 'non-string var', text: exampleWith(set('defaults.vars.Replicas', 3)), path: 'defaults.vars.Replicas', says: 'var values must be strings' },
  { name: 'MinCount in args', text: exampleWith(set('defaults.args.MinCount', 1)), path: 'defaults.args.MinCount', says: 'set the group "size" instead' },
  { name: 'SubnetId in group args', text: exampleWith(set('groups.default.web.args', { SubnetId: 'subnet-0aaa' })), path: 'groups.default.web.args.SubnetId', says: 'set "subnet_pool"' },
  { name: 'UserData in template args', text: exampleWith(set('templates.web.args.UserData', 'x')), path: 'templates.web.args.UserData', says: 'userdata.content' },
  { name: 'misspelt RunInstances parameter', text: exampleWith(set('defaults.args.SecurityGroupId', ['sg-1'])), path: 'defaults.args.SecurityGroupId', says: 'did you mean "SecurityGroupIds"?' },
  { name: 'HttpTokens maybe', text: exampleWith(set('defaults.args.MetadataOptions.HttpTokens', 'maybe')), path: 'defaults.args.MetadataOptions.HttpTokens', says: 'must be "required" or "optional", got "maybe"' },
  { name: 'reserved tag', text: exampleWith(set('defaults.args.TagSpecifications', [{ ResourceType: 'instance', Tags: [{ Key: 'nstance:shard', Value: 'x' }] }])), path: 'defaults.args.TagSpecifications[0].Tags[0].Key', says: 'set by nstance' },
  { name: 'duplicate kind', text: exampleWith(set('templates.api', secondTemplate)), path: 'templates.api.kind', says: 'kind "web" is already used by template "web"' },
  { name: 'bad tenant name', text: exampleWith(set('groups.Default', { web: { template: 'web', size: 1 } })), path: 'groups.Default', says: 'invalid tenant name "Default"' },
  { name: 'bad group name', text: exampleWith(set('groups.default.web!', { template: 'web', size: 1 })), path: 'groups.default["web!"]', says: 'invalid group name "web!"' },
  { name: 'bad image sort', text: exampleWith(set('images.al2023arm.sort', 'newest')), path: 'images.al2023arm.sort', says: 'must be "creation-date" or "name"' },
  { name: 'zone outside region', text: exampleWith(set('shard.infra.zone', 'us-west-2a')), path: 'shard.infra.zone', says: 'not in region "us-east-1"' },
  { name: 'bad leader ip', text: exampleWith(set('shard.leader_network.ip', '10.0.1')), path: 'shard.leader_network.ip', says: 'invalid ipv4' },
  { name: 'JSONC syntax error', text: '{\n  "cluster": {\n    "id": "demo"\n    "storage": {}\n  }\n}\n', path: '', says: 'syntax error at line 4:5' },
  { name: 'duplicate JSON key', text: exampleText.replace('"size": 3,', '"size": 3, "size": 4,'), path: 'groups.default.web.size', says: 'duplicate key' },
  { name: 'YAML syntax error', file: 'config.yaml', text: 'cluster:\n  id: demo\n\tstorage: x\n', path: '', says: 'syntax error at line 3:1: Tabs are not allowed' },
  { name: 'YAML duplicate key', file: 'config.yml', text: 'cluster: {}\ncluster: {}\n', path: 'cluster', says: 'duplicate key at 2:1' },
  { name: 'nested YAML duplicate key', file: 'config.yaml', text: 'cluster:\n  id: a\n  id: b\n', path: 'cluster.id', says: 'duplicate key at 3:3: the later value would silently replace the earlier one' },
  { name: 'empty file', text: '  // nothing here\n', path: '', says: 'the file is empty' },
  { name: 'top level is a list', text: '[]', path: '', says: 'expected an object, got a list' },
];

describe('invalid configs name the file and the offending field', () => {
  it('has a wide table', () => expect(cases.length).toBeGreaterThanOrEqual(25));

  it.each(cases)('$name', ({ text, file = 'config.jsonc', path, says }) => {
    const err = configErrorOf(text, file);
    const line = path ? `${file}: ${path}: ` : `${file}: `;
    const match = err.message.split('\n').find((l) => l.startsWith(line) && l.includes(says));
    if (!match) throw new Error(`no line starting with ${JSON.stringify(line)} containing ${JSON.stringify(says)} in:\n${err.message}`);
    expect(err.errors).toContainEqual(expect.objectContaining({ file, path }));
  });
});

describe('error reporting', () => {
  it('reports every schema problem, one per line', () => {
    const text = exampleWith(
      set('groups.default.web.size', -1),
      set('templates.web.arch', 'sparc'),
      set('shard.health_check_interval', '1 minute'),
      set('clustr', {}),
    );
    const err = configErrorOf(text, 'shard/use1-az1/config.jsonc');
    expect(err).toBeInstanceOf(Error);
    expect(err.errors.map((e) => e.path).sort()).toEqual(
      ['clustr', 'groups.default.web.size', 'shard.health_check_interval', 'templates.web.arch'].sort(),
    );
    expect(err.message.split('\n')).toHaveLength(4);
    for (const line of err.message.split('\n')) expect(line).toMatch(/^shard\/use1-az1\/config\.jsonc: \S+: /);
  });

  it('reports every cross-reference problem together', () => {
    const text = exampleWith(
      set('groups.default.web.template', 'wbe'),
      set('groups.default.api', { template: 'web', size: 1, load_balancers: ['nope'] }),
      set('templates.web.subnet_pool', 'public'),
    );
    const err = configErrorOf(text, 'config.jsonc');
    expect(err.errors.map((e) => e.path)).toEqual(
      expect.arrayContaining(['groups.default.web.template', 'groups.default.api.load_balancers[0]', 'templates.web.subnet_pool']),
    );
  });

  it('reports a bad name and a bad value in the same map together', () => {
    const text = exampleWith(set('groups.Ops', { web: { template: 'web', size: 'x' } }));
    const paths = configErrorOf(text, 'config.jsonc').errors.map((e) => e.path);
    expect(paths).toEqual(expect.arrayContaining(['groups.Ops', 'groups.Ops.web.size']));
  });
});
