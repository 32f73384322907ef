/** Issue 11's config fields: assume_role, AZ IDs, instance_types and instance_requirements, each validated at load, naming the field. */
import { ConfigValidationError, parseConfigText, resolveGroups } from '../../../common/config';
import { deletePath, exampleWith, setPath } from './example';

type Node = Record<string, unknown>;
const set = (path: string, value: unknown) => (c: Node) => void setPath(c, path, value);
const del = (path: string) => (c: Node) => void deletePath(c, path);

const ROLE = 'arn:aws:iam::210987654321:role/nstance-fleet';

function issues(text: string): { path: string; message: string }[] {
  try {
    parseConfigText(text, 'config.jsonc');
  } catch (e) {
    if (e instanceof ConfigValidationError) return e.errors.map((x) => ({ path: x.path, message: x.message }));
    throw e;
  }
  return [];
}

const cases: { name: string; text: string; path: string; says: string }[] = [
  { name: 'assume_role without role_arn', text: exampleWith(set('shard.infra.assume_role', { external_id: 'abc123' })), path: 'shard.infra.assume_role.role_arn', says: 'required' },
  { name: 'assume_role bad role_arn', text: exampleWith(set('shard.infra.assume_role', { role_arn: 'nstance-fleet' })), path: 'shard.infra.assume_role.role_arn', says: 'invalid role ARN "nstance-fleet"' },
  { name: 'assume_role user, not role', text: exampleWith(set('shard.infra.assume_role', { role_arn: 'arn:aws:iam::210987654321:user/bob' })), path: 'shard.infra.assume_role.role_arn', says: 'invalid role ARN' },
  { name: 'assume_role external_id too short', text: exampleWith(set('shard.infra.assume_role', { role_arn: ROLE, external_id: 'x' })), path: 'shard.infra.assume_role.external_id', says: 'invalid external_id "x"' },
  { name: 'assume_role session_name with a space', text: exampleWith(set('shard.infra.assume_role', { role_arn: ROLE, session_name: 'my session' })), path: 'shard.infra.assume_role.session_name', says: 'invalid session_name' },
  { name: 'assume_role duration too short', text: exampleWith(set('shard.infra.assume_role', { role_arn: ROLE, duration: '5m' })), path: 'shard.infra.assume_role.duration', says: 'must be at least 15m' },
  { name: 'assume_role duration too long', text: exampleWith(set('shard.infra.assume_role', { role_arn: ROLE, duration: '13h' })), path: 'shard.infra.assume_role.duration', says: 'must be at most 12h' },
  { name: 'assume_role bad duration', text: exampleWith(set('shard.infra.assume_role', { role_arn: ROLE, duration: 'an hour' })), path: 'shard.infra.assume_role.duration', says: 'invalid duration' },
  { name: 'assume_role unknown field', text: exampleWith(set('shard.infra.assume_role', { role_arn: ROLE, externalid: 'abc' })), path: 'shard.infra.assume_role.externalid', says: 'did you mean "external_id"?' },
  { name: 'zone neither name nor AZ ID', text: exampleWith(set('shard.infra.zone', 'use1_az1')), path: 'shard.infra.zone', says: 'expected a zone name (e.g. "us-east-1a") or an AZ ID (e.g. "use1-az1")' },
  { name: 'empty instance_types', text: exampleWith(del('templates.web.instance_type'), set('templates.web.instance_types', [])), path: 'templates.web.instance_types', says: 'at least one instance type' },
  { name: 'bad type in instance_types', text: exampleWith(del('templates.web.instance_type'), set('templates.web.instance_types', ['m7g.large', 'large'])), path: 'templates.web.instance_types[1]', says: 'invalid instance type "large"' },
  { name: 'duplicate type in instance_types', text: exampleWith(del('templates.web.instance_type'), set('templates.web.instance_types', ['m7g.large', 'm7g.large'])), path: 'templates.web.instance_types[1]', says: 'duplicate instance type' },
  { name: 'instance_type and instance_types both', text: exampleWith(set('templates.web.instance_types', ['m6g.large'])), path: 'templates.web.instance_types', says: 'not both instance_type and instance_types' },
  { name: 'template with no type at all', text: exampleWith(del('templates.web.instance_type')), path: 'templates.web.instance_type', says: 'give one of instance_type, instance_types, instance_requirements' },
  { name: 'group with two choices', text: exampleWith(set('groups.default.web.instance_type', 'm6g.large'), set('groups.default.web.instance_types', ['m6g.large'])), path: 'groups.default.web.instance_types', says: 'not both' },
  { name: 'requirements without vcpu', text: exampleWith(del('templates.web.instance_type'), set('templates.web.instance_requirements', { memory_mib: { min: 1024 } })), path: 'templates.web.instance_requirements.vcpu', says: 'required' },
  { name: 'requirements max < min', text: exampleWith(del('templates.web.instance_type'), set('templates.web.instance_requirements', { vcpu: { min: 4, max: 2 }, memory_mib: { min: 1024 } })), path: 'templates.web.instance_requirements.vcpu.max', says: 'vcpu max (2) must be >= min (4)' },
  { name: 'requirements memory as a string', text: exampleWith(del('templates.web.instance_type'), set('templates.web.instance_requirements', { vcpu: { min: 2 }, memory_mib: { min: '4GiB' } })), path: 'templates.web.instance_requirements.memory_mib.min', says: 'memory_mib min must be a number of MiB' },
  { name: 'requirements bad excluded type', text: exampleWith(del('templates.web.instance_type'), set('templates.web.instance_requirements', { vcpu: { min: 2 }, memory_mib: { min: 1024 }, excluded_types: ['T3!'] })), path: 'templates.web.instance_requirements.excluded_types[0]', says: 'invalid excluded type "T3!"' },
  { name: 'requirements bad burstable', text: exampleWith(del('templates.web.instance_type'), set('templates.web.instance_requirements', { vcpu: { min: 2 }, memory_mib: { min: 1024 }, burstable: 'yes' })), path: 'templates.web.instance_requirements.burstable', says: 'must be "included" or "excluded" or "required", got "yes"' },
  { name: '21 instance_types', text: exampleWith(del('templates.web.instance_type'), set('templates.web.instance_types', Array.from({ length: 21 }, (_, i) => `m${i + 1}.large`))), path: 'templates.web.instance_types', says: 'at most 20 instance types, got 21' },
  ...[
    { vcpu: { min: -1 }, at: 'vcpu.min', says: 'vcpu min must be at least 0, got -1' },
    { vcpu: { min: 2.5 }, at: 'vcpu.min', says: 'vcpu min must be a whole number of vCPUs, got 2.5' },
    { vcpu: { min: 1, max: 0 }, at: 'vcpu.max', says: 'vcpu max must be at least 1, got 0' },
    { vcpu: { min: 1, max: 1.5 }, at: 'vcpu.max', says: 'vcpu max must be a whole number of vCPUs, got 1.5' },
    { vcpu: { min: 2 }, memory_mib: { min: -512 }, at: 'memory_mib.min', says: 'memory_mib min must be at least 0, got -512' },
    { vcpu: { min: 2 }, memory_mib: { min: 1024.5 }, at: 'memory_mib.min', says: 'memory_mib min must be a whole number of MiB, got 1024.5' },
  ].map(({ at, says, ...given }) => ({
    name: `requirements ${JSON.stringify(given)}`,
    text: exampleWith(del('templates.web.instance_type'), set('templates.web.instance_requirements', { memory_mib: { min: 1024 }, ...given })),
    path: `templates.web.instance_requirements.${at}`,
    says,
  })),
  {
    name: 'requirements excluded type over 30 characters',
    text: exampleWith(del('templates.web.instance_type'), set('templates.web.instance_requirements', { vcpu: { min: 2 }, memory_mib: { min: 1024 }, excluded_types: ['t3', 'm5.' + 'x'.repeat(28)] })),
    path: 'templates.web.instance_requirements.excluded_types[1]',
    says: `excluded type "m5.${'x'.repeat(28)}" is 31 characters: EC2 takes at most 30 per excluded_types entry`,
  },
  {
    name: 'requirements 401 excluded types',
    text: exampleWith(del('templates.web.instance_type'), set('templates.web.instance_requirements', { vcpu: { min: 2 }, memory_mib: { min: 1024 }, excluded_types: Array.from({ length: 401 }, (_, i) => `x${i}`) })),
    path: 'templates.web.instance_requirements.excluded_types',
    says: 'at most 400 excluded_types (EC2\'s limit), got 401',
  },
  ...[0, 21, 2.5, 'five'].map((value) => ({
    name: `requirements max_types ${JSON.stringify(value)}`,
    text: exampleWith(del('templates.web.instance_type'), set('templates.web.instance_requirements', { vcpu: { min: 2 }, memory_mib: { min: 1024 }, max_types: value })),
    path: 'templates.web.instance_requirements.max_types',
    says: `max_types must be a whole number from 1 to 20 (the longest fallback list, as for instance_types), got ${JSON.stringify(value)}`,
  })),
];

describe('issue 11 config fields are validated at load, naming the field', () => {
  it.each(cases)('$name', ({ text, path, says }) => {
    const found = issues(text);
    const match = found.find((i) => i.path === path && i.message.includes(says));
    if (!match) throw new Error(`no issue at ${path} saying ${JSON.stringify(says)} in:\n${JSON.stringify(found, null, 2)}`);
  });

  it('accepts 20 instance_types, max_types 20, vcpu 0-1, memory 0 and 400 excluded types of 30 characters, the limits', () => {
    const listed = parseConfigText(exampleWith(del('templates.web.instance_type'), set('templates.web.instance_types', Array.from({ length: 20 }, (_, i) => `m${i + 1}.large`))), 'config.jsonc');
    expect(listed.templates.web.instance_types).toHaveLength(20);
    const selected = parseConfigText(exampleWith(del('templates.web.instance_type'), set('templates.web.instance_requirements', { vcpu: { min: 2 }, memory_mib: { min: 1024 }, max_types: 20 })), 'config.jsonc');
    expect(selected.templates.web.instance_requirements?.max_types).toBe(20);
    const excluded = ['m5.' + 'x'.repeat(27), ...Array.from({ length: 399 }, (_, i) => `x${i}`)];
    const limits = parseConfigText(exampleWith(del('templates.web.instance_type'), set('templates.web.instance_requirements', { vcpu: { min: 0, max: 1 }, memory_mib: { min: 0 }, excluded_types: excluded })), 'config.jsonc');
    expect(limits.templates.web.instance_requirements?.excluded_types).toHaveLength(400);
  });

  it('accepts an AZ ID as the zone, and a full assume_role with its default duration', () => {
    const text = exampleWith(set('shard.infra.zone', 'use1-az4'), set('shard.infra.assume_role', { role_arn: ROLE, external_id: 'tenant-42', session_name: 'nstance-use1' }));
    const config = parseConfigText(text, 'config.jsonc');
    expect(config.shard.infra.zone).toBe('use1-az4');
    expect(config.shard.infra.assume_role).toEqual({ role_arn: ROLE, external_id: 'tenant-42', session_name: 'nstance-use1', duration: '1h' });
  });

  it('resolves instance_types (first is preferred) and a group that overrides with instance_requirements', () => {
    const text = exampleWith(
      del('templates.web.instance_type'),
      set('templates.web.instance_types', ['m7g.large', 'm6g.large', 'c7g.large']),
      set('groups.default.api', { template: 'web', size: 1, instance_requirements: { vcpu: { min: 2, max: 4 }, memory_mib: { min: 4096 } } }),
    );
    const [api, web] = resolveGroups(parseConfigText(text, 'config.jsonc'));
    expect(web).toMatchObject({ group: 'web', instanceType: 'm7g.large', instanceTypes: ['m7g.large', 'm6g.large', 'c7g.large'] });
    expect(api).toMatchObject({ group: 'api', instanceType: '', instanceRequirements: { vcpu: { min: 2, max: 4 }, memory_mib: { min: 4096 }, burstable: 'excluded', max_types: 5 } });
    expect(api.instanceTypes).toBeUndefined();
  });
});
