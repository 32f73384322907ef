/**
 * Each cluster.secrets provider on the emulator (moto): Secrets Manager, Parameter Store
 * SecureStrings, and AES-256-GCM objects with the key from env, from Secrets Manager and from
 * Parameter Store. Each stores, lists, deletes, creates race-safely (one winner among racers
 * with their own clients, as separate workers have) and holds the cluster PKI.
 */
import { randomBytes } from 'node:crypto';
import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager';
import { CreateBucketCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { PutParameterCommand } from '@aws-sdk/client-ssm';
import { createAwsClients, destroyAwsClients, type AwsClients } from '../../adapters/aws/clients';
import { ensureClusterPki } from '../../adapters/pki/cluster-ca';
import { ObjectStore } from '../../adapters/s3/objects';
import { decryptSecret } from '../../adapters/secrets/crypto';
import { createSecretStore, type SecretsLocation } from '../../adapters/secrets/factory';
import type { ObjectStorageSecretStore } from '../../adapters/secrets/object-storage';
import type { SecretsConfig } from '../../common/config/secrets';
import { stackEnv } from '../support/stack-env';

const run = Date.now().toString(36);
const env = stackEnv();
const clients: AwsClients[] = [];
const newClients = () => {
  const aws = createAwsClients({ region: env.region, endpoint: env.awsEndpoint, maxAttempts: 3 });
  clients.push(aws);
  return aws;
};
const aws = newClients();
const rawKey = randomBytes(32);
const keyEnv = { NSTANCE_TEST_SECRETS_KEY: rawKey.toString('base64') };

afterAll(() => clients.forEach(destroyAwsClients));

interface Case {
  name: string;
  secrets: SecretsConfig;
  setup?: () => Promise<void>;
}

const cases: Case[] = [
  { name: 'aws-secrets-manager', secrets: { provider: 'aws-secrets-manager', prefix: `nstance/sm-${run}/` } },
  { name: 'aws-parameter-store', secrets: { provider: 'aws-parameter-store', prefix: `/nstance/ps-${run}/` } },
  { name: 'object-storage, key from env', secrets: { provider: 'object-storage', encryption_key: { provider: 'env', source: 'NSTANCE_TEST_SECRETS_KEY' } } },
  {
    name: 'object-storage, key from Secrets Manager',
    secrets: { provider: 'object-storage', prefix: 'team/', encryption_key: { provider: 'aws-secrets-manager', source: `nstance/key-${run}` } },
    setup: async () => void (await aws.secrets.send(new CreateSecretCommand({ Name: `nstance/key-${run}`, SecretBinary: rawKey }))),
  },
  {
    name: 'object-storage, key from Parameter Store',
    secrets: { provider: 'object-storage', encryption_key: { provider: 'aws-parameter-store', source: `/nstance/key-${run}` } },
    setup: async () => void (await aws.ssm.send(new PutParameterCommand({ Name: `/nstance/key-${run}`, Value: rawKey.toString('base64'), Type: 'SecureString' }))),
  },
];

describe.each(cases.map((c, i) => ({ ...c, bucket: `nstance-secrets-${run}-${i}` })))('$name', ({ secrets, setup, bucket }) => {
  const where: SecretsLocation = { clusterId: `c-${run}`, secrets, bucket };

  beforeAll(async () => {
    await aws.s3.send(new CreateBucketCommand({ Bucket: bucket }));
    await setup?.();
  });

  test('put, get, list (under a sub-prefix), replace, delete', async () => {
    const store = await createSecretStore(aws, where, keyEnv);
    await store.put('files/default/web/etc/app/token', 't0k3n');
    await store.put('files/default/web/etc/app/db', 'pa55');
    await store.put('files/default/api/etc/api/key', 'k3y');
    expect(await store.get('files/default/web/etc/app/token')).toBe('t0k3n');
    expect(await store.list('files/default/web/')).toEqual(['files/default/web/etc/app/db', 'files/default/web/etc/app/token']);
    await store.put('files/default/web/etc/app/token', 'r0tated');
    expect(await store.get('files/default/web/etc/app/token')).toBe('r0tated');
    expect(await store.delete('files/default/web/etc/app/db')).toBe(true);
    expect(await store.delete('files/default/web/etc/app/db')).toBe(false);
    expect(await store.get('files/default/web/etc/app/db')).toBeUndefined();
    expect(await store.list('files/default/')).toEqual(['files/default/api/etc/api/key', 'files/default/web/etc/app/token']);
  });

  test('four racers with their own clients: exactly one creates, all read the same value', async () => {
    const racers = await Promise.all([0, 1, 2, 3].map(() => createSecretStore(newClients(), where, keyEnv)));
    const results = await Promise.all(racers.map((store, i) => store.createIfAbsent('race', () => `value-${i}`, 'race')));
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(results.map((r) => r.value)).size).toBe(1);
    expect(await racers[0].createIfAbsent('race', () => 'late', 'race')).toEqual({ value: results[0].value, created: false });
  });

  test('the CA key and the registration-nonce key live in this store', async () => {
    const store = await createSecretStore(aws, where, keyEnv);
    const objects = new ObjectStore({ s3: aws.s3, bucket });
    const pki = await ensureClusterPki({ secrets: store, objects }, where);
    expect(pki.created).toEqual({ caKey: true, registrationKey: true, caCert: true });
    expect(await store.get('ca-key')).toContain('PRIVATE KEY');
    expect(await store.get('registration-key')).toContain('PRIVATE KEY');
    const again = await ensureClusterPki({ secrets: await createSecretStore(newClients(), where, keyEnv), objects }, where);
    expect(again.created).toEqual({ caKey: false, registrationKey: false, caCert: false });
    expect(again.registrationKid).toBe(pki.registrationKid);
  });

  if (secrets.provider === 'object-storage') {
    test('objects under cluster/<prefix> hold nonce ‖ ciphertext ‖ tag, never the plaintext', async () => {
      const store = (await createSecretStore(aws, where, keyEnv)) as ObjectStorageSecretStore;
      await store.put('plain-check', 'very secret value');
      const key = `cluster/${secrets.prefix ?? 'secret/'}plain-check`;
      expect(store.locate('plain-check')).toBe(`s3://${bucket}/${key}`);
      const out = await aws.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      const blob = Buffer.from(await out.Body!.transformToByteArray());
      expect(blob.toString('latin1')).not.toContain('very secret');
      expect(blob.length).toBe(12 + 'very secret value'.length + 16);
      expect(decryptSecret(blob, rawKey)?.toString()).toBe('very secret value');
    });
  }
});

describe('bad encryption keys in AWS are refused, naming the field', () => {
  const where = (source: SecretsConfig['encryption_key']): SecretsLocation => ({ clusterId: 'bad', bucket: 'unused', secrets: { provider: 'object-storage', encryption_key: source } });

  test('a 16-byte key in Secrets Manager', async () => {
    await aws.secrets.send(new CreateSecretCommand({ Name: `nstance/short-${run}`, SecretBinary: randomBytes(16) }));
    await expect(createSecretStore(aws, where({ provider: 'aws-secrets-manager', source: `nstance/short-${run}` }))).rejects.toThrow(
      `cluster.secrets.encryption_key: aws-secrets-manager "nstance/short-${run}" holds 16 bytes; an encryption key must be exactly 32 bytes`,
    );
  });

  test('a missing secret, and a plain String parameter', async () => {
    await expect(createSecretStore(aws, where({ provider: 'aws-secrets-manager', source: `nstance/none-${run}` }))).rejects.toThrow('cluster.secrets.encryption_key: aws-secrets-manager');
    await aws.ssm.send(new PutParameterCommand({ Name: `/nstance/plain-${run}`, Value: 'k'.repeat(32), Type: 'String' }));
    await expect(createSecretStore(aws, where({ provider: 'aws-parameter-store', source: `/nstance/plain-${run}` }))).rejects.toThrow('must be a SecureString');
  });
});
