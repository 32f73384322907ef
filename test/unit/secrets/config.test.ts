/** Bad `cluster.secrets` configs are rejected at load time, naming the field. */
import { ConfigValidationError, parseConfigText } from '../../../common/config';
import { secretsPrefix } from '../../../common/config/secrets';
import { deletePath, exampleWith, setPath } from '../config/example';

type Node = Record<string, unknown>;
const secrets = (value: unknown) => (c: Node) => void setPath(c, 'cluster.secrets', value);
const key = { provider: 'env', source: 'NSTANCE_SECRETS_KEY' };

const cases: { name: string; value: unknown; path: string; says: string }[] = [
  { name: 'unknown provider', value: { provider: 'vault', prefix: 'x/' }, path: 'cluster.secrets.provider', says: 'must be "aws-secrets-manager" or "aws-parameter-store" or "object-storage", got "vault"' },
  { name: 'object storage without a key', value: { provider: 'object-storage' }, path: 'cluster.secrets.encryption_key', says: 'encrypts every secret' },
  { name: 'unknown key provider', value: { provider: 'object-storage', encryption_key: { provider: 'kms', source: 'x' } }, path: 'cluster.secrets.encryption_key.provider', says: 'must be "env" or "file" or "aws-secrets-manager" or "aws-parameter-store", got "kms"' },
  { name: 'key without a source', value: { provider: 'object-storage', encryption_key: { provider: 'env' } }, path: 'cluster.secrets.encryption_key.source', says: 'required field is missing' },
  { name: 'old keys without a current key', value: { provider: 'aws-secrets-manager', old_encryption_keys: [key] }, path: 'cluster.secrets.old_encryption_keys', says: 'set encryption_key' },
  { name: 'old keys with a KMS provider', value: { provider: 'aws-parameter-store', prefix: '/n/', encryption_key: key, old_encryption_keys: [{ provider: 'env', source: 'OLD' }] }, path: 'cluster.secrets.old_encryption_keys', says: 'decrypt object-storage secrets' },
  { name: 'old key equal to the current', value: { provider: 'object-storage', encryption_key: key, old_encryption_keys: [key] }, path: 'cluster.secrets.old_encryption_keys[0]', says: 'is the current encryption_key' },
  { name: 'bad old key entry', value: { provider: 'object-storage', encryption_key: key, old_encryption_keys: [{ provider: 'file' }] }, path: 'cluster.secrets.old_encryption_keys[0].source', says: 'required field is missing' },
  { name: 'prefix without trailing slash', value: { provider: 'aws-secrets-manager', prefix: 'nstance/demo' }, path: 'cluster.secrets.prefix', says: 'must end with "/"' },
  { name: 'parameter store prefix not from the root', value: { provider: 'aws-parameter-store', prefix: 'nstance/demo/' }, path: 'cluster.secrets.prefix', says: 'start it with "/"' },
  { name: 'parameter store reserved prefix', value: { provider: 'aws-parameter-store', prefix: '/aws/x/' }, path: 'cluster.secrets.prefix', says: 'reserves names' },
  { name: 'object storage prefix climbing out', value: { provider: 'object-storage', prefix: '../x/', encryption_key: key }, path: 'cluster.secrets.prefix', says: 'no "." or ".." parts' },
  { name: 'secrets manager prefix with a space', value: { provider: 'aws-secrets-manager', prefix: 'my secrets/' }, path: 'cluster.secrets.prefix', says: 'letters, digits and /_+=.@-' },
  { name: 'bad cache_ttl', value: { provider: 'aws-secrets-manager', cache_ttl: '5 minutes' }, path: 'cluster.secrets.cache_ttl', says: 'invalid duration' },
  { name: 'unknown field', value: { provider: 'aws-secrets-manager', cache_tl: '5m' }, path: 'cluster.secrets.cache_tl', says: 'did you mean "cache_ttl"?' },
];

function errorOf(text: string): ConfigValidationError {
  try {
    parseConfigText(text, 'config.jsonc');
  } catch (e) {
    if (e instanceof ConfigValidationError) return e;
    throw e;
  }
  throw new Error('expected the config to be rejected');
}

test.each(cases)('$name', ({ value, path, says }) => {
  const err = errorOf(exampleWith(secrets(value)));
  const line = err.message.split('\n').find((l) => l.startsWith(`config.jsonc: ${path}: `) && l.includes(says));
  if (!line) throw new Error(`no line for ${path} containing ${JSON.stringify(says)} in:\n${err.message}`);
});

test('every provider and key source is accepted, and prefixes default per provider', () => {
  for (const value of [
    { provider: 'aws-secrets-manager' },
    { provider: 'aws-parameter-store', prefix: '/nstance/demo/', cache_ttl: '1m' },
    { provider: 'object-storage', encryption_key: { provider: 'file', source: '/etc/nstance/key' }, old_encryption_keys: [{ provider: 'aws-parameter-store', source: '/k/old' }, { provider: 'aws-secrets-manager', source: 'k/older' }] },
  ]) {
    const config = parseConfigText(exampleWith(secrets(value)), 'config.jsonc');
    expect(config.cluster.secrets.provider).toBe(value.provider);
  }
  const prefixOf = (value: Node) => secretsPrefix(parseConfigText(exampleWith(secrets(value)), 'c.jsonc').cluster.secrets);
  // Nstance's defaults, whatever the cluster id: an Nstance user's secrets keep their names.
  expect(prefixOf({ provider: 'aws-secrets-manager' })).toBe('nstance/');
  expect(prefixOf({ provider: 'aws-parameter-store' })).toBe('/nstance/');
  expect(prefixOf({ provider: 'object-storage', encryption_key: key })).toBe('secret/');
  expect(prefixOf({ provider: 'object-storage', encryption_key: key, prefix: 'team/' })).toBe('team/');
  // "" is Go's unset value, so Nstance's SetDefaults replaces it: it is never "no prefix" (which
  // would list cluster/ca.crt as a secret, or every secret in the account).
  expect(prefixOf({ provider: 'object-storage', encryption_key: key, prefix: '' })).toBe('secret/');
  expect(prefixOf({ provider: 'aws-secrets-manager', prefix: '' })).toBe('nstance/');
  expect(prefixOf({ provider: 'aws-parameter-store', prefix: '' })).toBe('/nstance/');
});

test("provider defaults to aws-parameter-store, as Nstance's SetDefaults does on AWS, with its /nstance/ prefix", () => {
  const parsed = (...edits: ((c: Node) => void)[]) => parseConfigText(exampleWith(...edits), 'config.jsonc').cluster.secrets;
  const noProvider = parsed(secrets({ cache_ttl: '1m' }));
  expect(noProvider.provider).toBe('aws-parameter-store');
  expect(secretsPrefix(noProvider)).toBe('/nstance/');
  expect(noProvider.cache_ttl).toBe('1m');
  // A Parameter Store prefix given without a provider is checked as one.
  expect(() => parsed(secrets({ prefix: 'nstance/demo/' }))).toThrow(/cluster\.secrets\.prefix: .*start it with "\/"/);
  // The whole block may be left out too (Nstance's SecretsConfig is a value, defaulted the same way).
  const noBlock = parsed((c) => void deletePath(c, 'cluster.secrets'));
  expect(noBlock.provider).toBe('aws-parameter-store');
  expect(secretsPrefix(noBlock)).toBe('/nstance/');
});
