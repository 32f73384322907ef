/**
 * Each cluster.secrets provider on the emulator (moto): Secrets Manager, Parameter Store
 * SecureStrings, and AES-256-GCM objects with the key from env, from Secrets Manager and from
 * Parameter Store. Each stores, lists, deletes, creates race-safely (one winner among racers
 * with their own clients, as separate workers have) and holds the cluster PKI.
 *
 * The IAM proof covers it: every call goes through a fault layer that logs it. What the worker does (race-safe
 * creation, the PKI, reads) must be allowed by the policy `nstance iam policy` generates for the case's config;
 * what only the operator does (`nstance secrets put` over an existing secret, `delete`) must be refused by it;
 * and the same store pointed outside its prefix is refused.
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
import { parseConfigText, type NstanceConfig } from '../../common/config';
import { secretsPrefix, type SecretsConfig } from '../../common/config/secrets';
import { workerPolicy } from '../../common/iam/policy';
import { FaultLayer, MOTO_ACCOUNT } from '../support/faults';
import { evaluate, proveCallsAllowed } from '../support/iam-proof';
import { SecretFiles } from '../../workers/agent-api/secret-files';
import { stackEnv } from '../support/stack-env';
import { recordSecretsKey } from '../support/secret-ledger';

const run = Date.now().toString(36);
const env = stackEnv();
const clients: AwsClients[] = [];
/** Clients whose every call `faults` logs (the IAM proof's input). */
const newClients = (faults: FaultLayer) => {
  const aws = createAwsClients({ region: env.region, endpoint: env.awsEndpoint, maxAttempts: 3 });
  faults.attachAll(aws);
  clients.push(aws);
  return aws;
};
/** The tests' own setup and checks (buckets, keys put in place, raw reads): not calls the project makes. */
const aws = createAwsClients({ region: env.region, endpoint: env.awsEndpoint, maxAttempts: 3 });
clients.push(aws);
const rawKey = recordSecretsKey('secret-stores: the stores\' key', randomBytes(32));
const keyEnv = { NSTANCE_TEST_SECRETS_KEY: rawKey.toString('base64') };

afterAll(() => clients.forEach(destroyAwsClients));

/** A shard config holding this store, for the policy `nstance iam policy` would print for it. */
function configOf(where: SecretsLocation): NstanceConfig {
  const config = {
    cluster: { id: where.clusterId, storage: { provider: 's3', bucket: where.bucket }, secrets: where.secrets },
    shard: { id: `stores-${run}`, infra: { provider: 'aws', region: env.region, zone: `${env.region}a` }, subnet_pools: { private: ['subnet-0aaa'] } },
  };
  return parseConfigText(JSON.stringify(config), 'config.jsonc');
}

/** What only the operator does (`nstance secrets put` over an existing secret, `nstance secrets delete`): never the worker's. */
const OPERATOR_ONLY = ['secretsmanager:PutSecretValue', 'secretsmanager:DeleteSecret', 'ssm:DeleteParameter', 's3:DeleteObject'];

const actionsOf = (faults: FaultLayer) => [...new Set(faults.calls.flatMap((c) => c.auth ?? []).map((r) => r.action))].sort();

interface Case {
  name: string;
  secrets: SecretsConfig;
  setup?: () => Promise<void>;
  /** The IAM actions the worker's calls must include (so the proof cannot pass on calls it never saw). */
  workerActions: string[];
  /** The store pointed outside its prefix: the policy must refuse it. */
  outside: Partial<SecretsConfig>;
}

const cases: Case[] = [
  {
    name: 'aws-secrets-manager',
    secrets: { provider: 'aws-secrets-manager', prefix: `nstance/sm-${run}/` },
    workerActions: ['s3:GetObject', 's3:PutObject', 'secretsmanager:CreateSecret', 'secretsmanager:GetSecretValue', 'secretsmanager:ListSecrets'],
    outside: { prefix: `other/sm-${run}/` },
  },
  {
    name: 'aws-parameter-store',
    secrets: { provider: 'aws-parameter-store', prefix: `/nstance/ps-${run}/` },
    workerActions: ['s3:GetObject', 's3:PutObject', 'ssm:DescribeParameters', 'ssm:GetParameter', 'ssm:PutParameter'],
    outside: { prefix: `/other/ps-${run}/` },
  },
  {
    name: 'object-storage, key from env',
    secrets: { provider: 'object-storage', encryption_key: { provider: 'env', source: 'NSTANCE_TEST_SECRETS_KEY' } },
    workerActions: ['s3:GetObject', 's3:ListBucket', 's3:PutObject'],
    outside: { prefix: 'other/' },
  },
  {
    name: 'object-storage, key from Secrets Manager',
    secrets: { provider: 'object-storage', prefix: 'team/', encryption_key: { provider: 'aws-secrets-manager', source: `nstance/key-${run}` } },
    setup: async () => void (await aws.secrets.send(new CreateSecretCommand({ Name: `nstance/key-${run}`, SecretBinary: rawKey }))),
    workerActions: ['s3:GetObject', 's3:ListBucket', 's3:PutObject', 'secretsmanager:GetSecretValue'],
    outside: { prefix: 'secret/' },
  },
  {
    name: 'object-storage, key from Parameter Store',
    secrets: { provider: 'object-storage', encryption_key: { provider: 'aws-parameter-store', source: `/nstance/key-${run}` } },
    setup: async () => void (await aws.ssm.send(new PutParameterCommand({ Name: `/nstance/key-${run}`, Value: rawKey.toString('base64'), Type: 'SecureString' }))),
    workerActions: ['s3:GetObject', 's3:ListBucket', 's3:PutObject', 'ssm:GetParameter'],
    outside: { prefix: 'team/' },
  },
];

describe.each(cases.map((c, i) => ({ ...c, bucket: `nstance-secrets-${run}-${i}` })))('$name', ({ secrets, setup, bucket, workerActions, outside }) => {
  const where: SecretsLocation = { clusterId: `c-${run}`, secrets, bucket };
  /** The worker's calls (race-safe creation, the PKI), and the operator's (`nstance secrets` put, get, list, delete). */
  const worker = new FaultLayer();
  const operator = new FaultLayer();

  beforeAll(async () => {
    await aws.s3.send(new CreateBucketCommand({ Bucket: bucket }));
    await setup?.();
  });

  test('put, get, list (under a sub-prefix), replace, delete', async () => {
    const store = await createSecretStore(newClients(operator), where, keyEnv);
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

  test("the agent API's secret files of a group, listed and read with the worker's clients", async () => {
    // What /v1/files delivers for default/web after the operator's puts above: the store listed under the group, each value read.
    const files = await new SecretFiles().forGroup(await createSecretStore(newClients(worker), where, keyEnv), 'default', 'web');
    expect(files.map((f) => [f.path, f.content])).toEqual([['/etc/app/token', 'r0tated']]);
  });

  test('four racers with their own clients: exactly one creates, all read the same value', async () => {
    const racers = await Promise.all([0, 1, 2, 3].map(() => createSecretStore(newClients(worker), where, keyEnv)));
    const results = await Promise.all(racers.map((store, i) => store.createIfAbsent('race', () => `value-${i}`, 'race')));
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(results.map((r) => r.value)).size).toBe(1);
    expect(await racers[0].createIfAbsent('race', () => 'late', 'race')).toEqual({ value: results[0].value, created: false });
  });

  test('the CA key and the registration-nonce key live in this store', async () => {
    const workerAws = newClients(worker);
    const store = await createSecretStore(workerAws, where, keyEnv);
    const objects = new ObjectStore({ s3: workerAws.s3, bucket });
    const pki = await ensureClusterPki({ secrets: store, objects }, where);
    expect(pki.created).toEqual({ caKey: true, registrationKey: true, caCert: true });
    expect(await store.get('ca-key')).toContain('PRIVATE KEY');
    expect(await store.get('registration-key')).toContain('PRIVATE KEY');
    const again = await ensureClusterPki({ secrets: await createSecretStore(newClients(worker), where, keyEnv), objects }, where);
    expect(again.created).toEqual({ caKey: false, registrationKey: false, caCert: false });
    expect(again.registrationKid).toBe(pki.registrationKid);
  });

  if (secrets.provider === 'object-storage') {
    test('objects under cluster/<prefix> hold nonce ‖ ciphertext ‖ tag, never the plaintext', async () => {
      const store = (await createSecretStore(newClients(operator), where, keyEnv)) as ObjectStorageSecretStore;
      await store.put('plain-check', 'very secret value');
      const key = `cluster/${secretsPrefix(secrets)}plain-check`;
      expect(store.locate('plain-check')).toBe(`s3://${bucket}/${key}`);
      const out = await aws.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      const blob = Buffer.from(await out.Body!.transformToByteArray());
      expect(blob.toString('latin1')).not.toContain('very secret');
      expect(blob.length).toBe(12 + 'very secret value'.length + 16);
      expect(decryptSecret(blob, rawKey)?.toString()).toBe('very secret value');
    });
  }

  test('IAM proof: every call the worker made is allowed by the generated policy; the operator-only ones are refused', async () => {
    const config = configOf(where);
    // Logged (a client left outside the fault layer would leave its service out of this list).
    expect(actionsOf(worker)).toEqual(expect.arrayContaining(workerActions));
    const proven = await proveCallsAllowed(worker.calls, [config]);
    expect(proven.distinct).toBeGreaterThanOrEqual(workerActions.length);

    const verdicts = await evaluate(operator.calls.flatMap((c) => c.auth ?? []), [workerPolicy(config, { account: MOTO_ACCOUNT })]);
    const refused = [...new Set(verdicts.filter((v) => v.result !== 'Allowed').map((v) => v.request.action))].sort();
    // Deleting is the operator's alone, with every provider; all else the operator did, the worker may do too.
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.filter((action) => !OPERATOR_ONLY.includes(action))).toEqual([]);
  });

  test('IAM proof: the same store pointed outside its prefix is refused, naming the call', async () => {
    const stray = new FaultLayer();
    const store = await createSecretStore(newClients(stray), { ...where, secrets: { ...secrets, ...outside } }, keyEnv);
    await store.get('ca-key');
    await expect(proveCallsAllowed(stray.calls, [configOf(where)])).rejects.toThrow(/not allowed by the generated policy:\n.*ca-key.*Denied/);
  });
});

describe('bad encryption keys in AWS are refused, naming the field', () => {
  const where = (source: SecretsConfig['encryption_key']): SecretsLocation => ({ clusterId: 'bad', bucket: 'unused', secrets: { provider: 'object-storage', encryption_key: source } });
  /** Reading a key is the worker's: each read, logged, must be allowed by the policy of the config naming that key. */
  const reads = new FaultLayer();
  const tried: SecretsLocation[] = [];
  const storeFor = (location: SecretsLocation) => {
    tried.push(location);
    return createSecretStore(newClients(reads), location);
  };

  afterAll(async () => {
    expect(actionsOf(reads)).toEqual(['secretsmanager:GetSecretValue', 'ssm:GetParameter']);
    await proveCallsAllowed(reads.calls, tried.map(configOf));
  });

  test('a 16-byte key in Secrets Manager', async () => {
    await aws.secrets.send(new CreateSecretCommand({ Name: `nstance/short-${run}`, SecretBinary: randomBytes(16) }));
    await expect(storeFor(where({ provider: 'aws-secrets-manager', source: `nstance/short-${run}` }))).rejects.toThrow(
      `cluster.secrets.encryption_key: aws-secrets-manager "nstance/short-${run}" holds 16 bytes; an encryption key must be exactly 32 bytes`,
    );
  });

  test('a missing secret, and a plain String parameter', async () => {
    await expect(storeFor(where({ provider: 'aws-secrets-manager', source: `nstance/none-${run}` }))).rejects.toThrow('cluster.secrets.encryption_key: aws-secrets-manager');
    await aws.ssm.send(new PutParameterCommand({ Name: `/nstance/plain-${run}`, Value: 'k'.repeat(32), Type: 'String' }));
    await expect(storeFor(where({ provider: 'aws-parameter-store', source: `/nstance/plain-${run}` }))).rejects.toThrow('must be a SecureString');
  });
});
