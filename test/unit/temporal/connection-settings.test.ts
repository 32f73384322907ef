import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clientConnectionOptions, describeTemporalSettings, nativeConnectionOptions, temporalSettingsFromEnv } from '../../../adapters/temporal/connection-settings';
import { workerEnv } from '../../../workers/worker';
import { clientEnv } from '../../../client/connection';

const dir = mkdtempSync(join(tmpdir(), 'temporal-envconfig-'));
const file = (name: string, text: string) => {
  writeFileSync(join(dir, name), text);
  return join(dir, name);
};
const bytes = (text: string) => new TextEncoder().encode(text);
/** No developer's ~/.config/temporalio/temporal.toml: a config file that does not exist is no file. */
const base = { HOME: dir, XDG_CONFIG_HOME: dir };

test('nothing set: the local dev server, plaintext, as before', () => {
  const settings = temporalSettingsFromEnv(base);
  expect(settings).toEqual({ address: '127.0.0.1:7233', namespace: 'default', profile: 'default' });
  expect(nativeConnectionOptions(settings)).toEqual({ address: '127.0.0.1:7233' });
  expect(describeTemporalSettings(settings)).toBe('127.0.0.1:7233/default (plaintext, profile default)');
});

test('TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE still work (empty means unset)', () => {
  expect(temporalSettingsFromEnv({ ...base, TEMPORAL_ADDRESS: 'temporal:7233', TEMPORAL_NAMESPACE: 'prod' })).toMatchObject({ address: 'temporal:7233', namespace: 'prod' });
  expect(temporalSettingsFromEnv({ ...base, TEMPORAL_ADDRESS: '', TEMPORAL_NAMESPACE: '' })).toMatchObject({ address: '127.0.0.1:7233', namespace: 'default' });
});

test('mTLS from the environment: CA, client pair and server name reach both connection kinds', () => {
  const ca = file('ca.pem', 'CA PEM');
  const crt = file('client.pem', 'CLIENT PEM');
  const key = file('client.key', 'KEY PEM');
  const env = { ...base, TEMPORAL_ADDRESS: 'temporal.internal:7233', TEMPORAL_TLS_SERVER_CA_CERT_PATH: ca, TEMPORAL_TLS_CLIENT_CERT_PATH: crt, TEMPORAL_TLS_CLIENT_KEY_PATH: key, TEMPORAL_TLS_SERVER_NAME: 'temporal' };
  const settings = temporalSettingsFromEnv(env);
  const expected = { serverNameOverride: 'temporal', serverRootCACertificate: bytes('CA PEM'), clientCertPair: { crt: bytes('CLIENT PEM'), key: bytes('KEY PEM') } };
  expect(nativeConnectionOptions(settings).tls).toEqual(expected);
  expect(clientConnectionOptions(settings).tls).toEqual(expected);
  expect(describeTemporalSettings(settings)).toBe('temporal.internal:7233/default (mTLS, profile default)');
});

test('Temporal Cloud: an API key turns TLS on, and is never printed', () => {
  const settings = temporalSettingsFromEnv({ ...base, TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233', TEMPORAL_NAMESPACE: 'ns.acct', TEMPORAL_API_KEY: 'secret-api-key' });
  expect(clientConnectionOptions(settings)).toEqual({ address: 'ns.acct.tmprl.cloud:7233', tls: {}, apiKey: 'secret-api-key' });
  expect(describeTemporalSettings(settings)).not.toContain('secret-api-key');
  expect(describeTemporalSettings(settings)).toContain('TLS, API key');
});

test('profiles from a TOML file (TEMPORAL_CONFIG_FILE, TEMPORAL_PROFILE); the environment overrides the profile', () => {
  const config = file(
    'temporal.toml',
    ['[profile.default]', 'address = "127.0.0.1:7233"', '', '[profile.prod]', 'address = "prod.internal:7233"', 'namespace = "fleet"', '[profile.prod.tls]', `server_ca_cert_path = "${file('prod-ca.pem', 'PROD CA')}"`, '[profile.prod.grpc_meta]', 'x-team = "infra"'].join('\n'),
  );
  const prod = temporalSettingsFromEnv({ ...base, TEMPORAL_CONFIG_FILE: config, TEMPORAL_PROFILE: 'prod' });
  expect(prod).toMatchObject({ address: 'prod.internal:7233', namespace: 'fleet', profile: 'prod', tls: { serverRootCACertificate: bytes('PROD CA') }, metadata: { 'x-team': 'infra' } });
  expect(temporalSettingsFromEnv({ ...base, TEMPORAL_CONFIG_FILE: config, TEMPORAL_PROFILE: 'prod', TEMPORAL_NAMESPACE: 'other' }).namespace).toBe('other');
  expect(temporalSettingsFromEnv({ ...base, TEMPORAL_CONFIG_FILE: config }).address).toBe('127.0.0.1:7233');
});

test('a profile that does not exist, or TLS files that cannot be read, fail naming the profile', () => {
  const config = file('one.toml', '[profile.default]\naddress = "x:1"\n');
  expect(() => temporalSettingsFromEnv({ ...base, TEMPORAL_CONFIG_FILE: config, TEMPORAL_PROFILE: 'staging' })).toThrow(/profile "staging".*one\.toml.*Profile 'staging' not found/);
  expect(() => temporalSettingsFromEnv({ ...base, TEMPORAL_TLS_SERVER_CA_CERT_PATH: join(dir, 'missing.pem') })).toThrow(/Temporal connection settings \(profile "default"\).*missing\.pem/);
});

test('the worker and the CLI read the same settings', () => {
  const env = { ...base, TEMPORAL_ADDRESS: 'temporal:7233', TEMPORAL_NAMESPACE: 'prod', TEMPORAL_API_KEY: 'k', NSTANCE_SHARD: 's', NSTANCE_BUCKET: 'b' };
  expect(workerEnv(env).temporal).toEqual(clientEnv(env));
  expect(workerEnv(env)).toMatchObject({ temporalAddress: 'temporal:7233', namespace: 'prod' });
});
