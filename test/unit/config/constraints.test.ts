import { generateKeyPairSync } from 'node:crypto';
import { parseConfigText, parseDynamicGroupsText, validateDynamicGroups } from '../../../common/config';
import { EC2_USERDATA_MAX_BYTES, LAUNCH_VALUE_ALLOWANCE } from '../../../common/config/constraints';
import { mintLaunchNonce } from '../../../adapters/pki/nonce';
import { certificateFingerprint, createCaCertificate } from '../../../adapters/pki/x509';
import { configErrorOf, exampleText, exampleWith, setPath } from './example';

type Node = Record<string, unknown>;
const set = (path: string, value: unknown) => (c: Node) => void setPath(c, path, value);

const tags = (n: number) => [{ ResourceType: 'instance', Tags: Array.from({ length: n }, (_, i) => ({ Key: `k${i}`, Value: 'v' })) }];

const cases: { name: string; text: string; path: string; says: string }[] = [
  // Nstance's duration ordering.
  { name: 'registration_timeout not above the gc interval', text: exampleWith(set('shard.garbage_collection', { interval: '5m', registration_timeout: '5m' })), path: 'shard.garbage_collection.registration_timeout', says: 'must be greater than garbage_collection.interval (5m)' },
  { name: 'eligible_age equal to forced_age', text: exampleWith(set('shard.expiry', { eligible_age: '21d', forced_age: '504h' })), path: 'shard.expiry.forced_age', says: 'must be greater than eligible_age (21d)' },
  { name: 'forced_age before eligible_age', text: exampleWith(set('shard.expiry', { eligible_age: '30d', forced_age: '504h' })), path: 'shard.expiry.forced_age', says: 'forced_age (504h) must be greater than eligible_age (30d)' },
  // Nstance's identifiers.
  { name: 'shard id with doubled hyphen', text: exampleWith(set('shard.id', 'use1--az1')), path: 'shard.id', says: 'no leading, trailing or doubled "-"' },
  { name: 'cluster id over 32 characters', text: exampleWith(set('cluster.id', 'a'.repeat(33))), path: 'cluster.id', says: 'longer than 32 characters' },
  { name: 'tenant with underscore', text: exampleWith(set('groups.team_a', { web: { template: 'web', size: 1 } })), path: 'groups.team_a', says: 'tenant "team_a"' },
  { name: 'group with trailing hyphen', text: exampleWith(set('groups.default.web-', { template: 'web', size: 1 })), path: 'groups.default.web-', says: 'group "web-"' },
  { name: 'subnet pool with underscore', text: exampleWith(set('shard.subnet_pools.pri_vate', ['subnet-0ccc'])), path: 'shard.subnet_pools.pri_vate', says: 'subnet pool "pri_vate"' },
  { name: 'template reference not alphanumeric', text: exampleWith(set('templates.web-2', { kind: 'wbb', arch: 'arm64', instance_type: 'm7g.large', subnet_pool: 'private' }), set('groups.default.web.template', 'web-2')), path: 'groups.default.web.template', says: 'letters and digits only' },
  { name: 'kind with a digit', text: exampleWith(set('templates.web.kind', 'w3b')), path: 'templates.web.kind', says: 'exactly 3 lowercase letters, as in Nstance' },
  { name: 'subnet in two pools', text: exampleWith(set('shard.subnet_pools.other', ['subnet-0aaa'])), path: 'shard.subnet_pools.other[0]', says: 'already in pool "private"' },
  { name: 'empty userdata', text: exampleWith(set('templates.web.userdata.content', '')), path: 'templates.web.userdata.content', says: 'userdata content is empty' },
  { name: 'bucket with doubled hyphen', text: exampleWith(set('cluster.storage.bucket', 'nstance--demo')), path: 'cluster.storage.bucket', says: 'consecutive hyphens' },
  { name: 'bucket like an IP address', text: exampleWith(set('cluster.storage.bucket', '192.168.10.1')), path: 'cluster.storage.bucket', says: 'IP address' },
  // EC2's limits on RunInstances input.
  { name: 'rendered userdata over 16 KB', text: exampleWith(set('templates.web.userdata.content', `#!/bin/sh\n${'#'.repeat(EC2_USERDATA_MAX_BYTES)}\n`)), path: 'templates.web.userdata.content', says: "over EC2's 16384" },
  { name: 'userdata over 16 KB once vars are rendered', text: exampleWith(set('templates.web.userdata.content', 'echo {{ .Vars.Big }}'), set('groups.default.web.vars', { Big: 'x'.repeat(EC2_USERDATA_MAX_BYTES) })), path: 'templates.web.userdata.content', says: 'rendered for group default/web' },
  { name: 'too many tags with nstance\'s own', text: exampleWith(set('groups.default.web.args', { TagSpecifications: tags(45) })), path: 'groups.default.web.args.TagSpecifications[0].Tags', says: "45 tags plus nstance's 6 is more than EC2's 50" },
  { name: 'tag key too long', text: exampleWith(set('defaults.args.TagSpecifications', [{ ResourceType: 'instance', Tags: [{ Key: 'k'.repeat(129), Value: 'v' }] }])), path: 'groups.default.web.args.TagSpecifications[0].Tags[0].Key', says: 'EC2 allows 128' },
  { name: 'an instance tag key instance metadata cannot carry', text: exampleWith(set('groups.default.web.args', { MetadataOptions: { InstanceMetadataTags: 'enabled' }, TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'team/name', Value: 'v' }] }] })), path: 'groups.default.web.args.TagSpecifications[0].Tags[0].Key', says: 'with MetadataOptions.InstanceMetadataTags "enabled"' },
  { name: 'aws: tag', text: exampleWith(set('defaults.args.TagSpecifications', [{ ResourceType: 'instance', Tags: [{ Key: 'aws:x', Value: 'v' }] }])), path: 'groups.default.web.args.TagSpecifications[0].Tags[0].Key', says: 'reserved by AWS' },
];

describe('constraints Nstance and EC2 enforce, checked at load time, naming the field', () => {
  it.each(cases)('$name', ({ text, path, says }) => {
    const err = configErrorOf(text);
    const line = `config.jsonc: ${path}: `;
    const match = err.message.split('\n').find((l) => l.startsWith(line) && l.includes(says));
    if (!match) throw new Error(`no line starting with ${JSON.stringify(line)} containing ${JSON.stringify(says)} in:\n${err.message}`);
  });

  // One rule, Nstance's (eligible_age < forced_age): equal and reversed ages get the same single message.
  it.each([
    ['equal', { eligible_age: '21d', forced_age: '504h' }],
    ['reversed', { eligible_age: '30d', forced_age: '504h' }],
  ])('expiry ages %s: one issue, naming forced_age', (_, expiry) => {
    const lines = configErrorOf(exampleWith(set('shard.expiry', expiry))).message.split('\n').filter((l) => l.includes('_age'));
    expect(lines).toEqual([`config.jsonc: shard.expiry.forced_age: forced_age (${expiry.forced_age}) must be greater than eligible_age (${expiry.eligible_age}), as in Nstance`]);
  });

  it('expiry ages one apart pass', () => {
    expect(() => parseConfigText(exampleWith(set('shard.expiry', { eligible_age: '504h', forced_age: '504h1s' })), 'config.jsonc')).not.toThrow();
  });

  it('the example config meets them all', () => {
    expect(() => parseConfigText(exampleText, 'config.jsonc')).not.toThrow();
    // 44 tags plus nstance's 6 is exactly EC2's limit.
    expect(() => parseConfigText(exampleWith(set('groups.default.web.args', { TagSpecifications: tags(44) })), 'config.jsonc')).not.toThrow();
    // Without tags in instance metadata, any key EC2 takes; with them, nstance's own keys and plain ones pass.
    const slashed = [{ ResourceType: 'instance', Tags: [{ Key: 'team/name', Value: 'v' }] }];
    expect(() => parseConfigText(exampleWith(set('groups.default.web.args', { TagSpecifications: slashed })), 'config.jsonc')).not.toThrow();
    const plain = { MetadataOptions: { InstanceMetadataTags: 'enabled' }, TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'team:name_1', Value: 'v w' }] }] };
    expect(() => parseConfigText(exampleWith(set('groups.default.web.args', plain)), 'config.jsonc')).not.toThrow();
  });

  it('dynamic groups meet the same rules', () => {
    const config = parseConfigText(exampleText, 'config.jsonc');
    const dynamic = parseDynamicGroupsText(JSON.stringify({ groups: { default: { api_x: { template: 'web', size: 1 } } } }), 'groups.jsonc');
    expect(() => validateDynamicGroups(config, dynamic, 'groups.jsonc')).toThrow(/groups\.default\.api_x: group "api_x"/);
  });

  it('the stand-ins for launch-time values are at least as long as the real ones', async () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const ca = await createCaCertificate(privateKey, 'c'.repeat(32));
    const long = 'x'.repeat(32);
    const nonce = mintLaunchNonce(
      privateKey,
      { cluster: long, shard: long, tenant: long, group: long, instanceId: `web-${'0'.repeat(12)}`, caFingerprint: certificateFingerprint(ca) },
      { workflowId: `nstance:${long}:instance:web-000000000000`, issuedAtMs: Date.now(), ttlMs: 3_600_000, kid: 'k'.repeat(64) },
    );
    expect(nonce.token.length).toBeLessThan(LAUNCH_VALUE_ALLOWANCE.nonce);
    expect(ca.length).toBeLessThan(LAUNCH_VALUE_ALLOWANCE.caCert);
  });
});
