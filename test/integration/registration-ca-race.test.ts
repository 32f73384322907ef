/**
 * The cluster PKI is created exactly once even when workers race: Secrets Manager
 * picks one winner per secret, the CA certificate is written create-only and
 * checked against the winning key.
 */
import { X509Certificate } from 'node:crypto';
import { createAwsClients, destroyAwsClients, type AwsClients } from '../../adapters/aws/clients';
import { ensureClusterPki } from '../../adapters/pki/cluster-ca';
import { ObjectStore } from '../../adapters/s3/objects';
import { SecretsManagerStore } from '../../adapters/secrets/secrets-manager';
import { s3Keys } from '../../common/names';
import { listKeys } from '../support/emulator';
import { parseConfigText } from '../../common/config';
import type { SeedResult } from '../../scripts/seed-emulator';
import { configText, seedShard, testConfig } from '../support/fixtures';
import { FaultLayer } from '../support/faults';
import { createHarness, type Harness } from '../support/harness';
import { proveCallsAllowed } from '../support/iam-proof';
import { stackEnv } from '../support/stack-env';

const name = `ca-${Date.now().toString(36)}`;
let h: Harness;
const extra: AwsClients[] = [];
let seed: SeedResult;
const logs: FaultLayer[] = [];

beforeAll(async () => {
  h = await createHarness({ shard: name, bucket: `nstance-${name}` });
  seed = await seedShard(h);
});

afterAll(async () => {
  extra.forEach(destroyAwsClients);
  await h.close();
  // The IAM proof: every initializer's calls, against the policy of a shard whose secrets prefix it used
  // (the second test's prefix is another shard's, as a misconfigured second cluster would be).
  if (process.env.NSTANCE_IAM_PROOF === 'off') return;
  const policyOf = (shard: string) => parseConfigText(configText(testConfig(seed, { shard, bucket: h.bucket, size: 0 })), 'config.jsonc');
  await proveCallsAllowed(logs.flatMap((l) => l.calls), [policyOf(name), policyOf(`${name}-other`)]);
});

/** An initializer with its own AWS clients, as a separate worker process would have. */
function initializer(prefix: string) {
  const env = stackEnv();
  const aws = createAwsClients({ region: env.region, endpoint: env.awsEndpoint, maxAttempts: 2 });
  // Logged for the IAM proof (the test's own checks, such as listing cluster/, are not the initializers').
  logs.push(new FaultLayer().attachAll(aws));
  extra.push(aws);
  const objects = new ObjectStore({ s3: aws.s3, bucket: h.bucket });
  return () => ensureClusterPki({ secrets: new SecretsManagerStore(aws.secrets, prefix), objects }, { clusterId: 'race' });
}

async function secretsUnder(prefix: string): Promise<string[]> {
  return (await new SecretsManagerStore(h.aws.secrets, prefix).list()).map((n) => `${prefix}${n}`);
}

test('four initializers racing against the same bucket and prefix create one CA key, one registration key and one ca.crt', async () => {
  const prefix = `nstance/${name}/`;
  const results = await Promise.all([initializer(prefix), initializer(prefix), initializer(prefix), initializer(prefix)].map((init) => init()));

  expect(await secretsUnder(prefix)).toEqual([`${prefix}ca-key`, `${prefix}registration-key`]);
  expect(await listKeys(h.aws.s3, h.bucket, 'cluster/')).toEqual([s3Keys.caCert()]);
  // Everyone ends up with the same pair.
  const certs = new Set(results.map((r) => r.caCertPem));
  expect(certs.size).toBe(1);
  const kids = new Set(results.map((r) => r.registrationKid));
  expect(kids.size).toBe(1);
  expect(results.filter((r) => r.created.caKey)).toHaveLength(1);
  expect(results.filter((r) => r.created.registrationKey)).toHaveLength(1);
  expect(results.filter((r) => r.created.caCert).length).toBeLessThanOrEqual(1);
  const ca = new X509Certificate(results[0].caCertPem);
  expect(ca.ca).toBe(true);
  expect(ca.verify(ca.publicKey)).toBe(true);

  // A later start reads what exists and creates nothing.
  const again = await initializer(prefix)();
  expect(again.created).toEqual({ caKey: false, registrationKey: false, caCert: false });
  expect(again.caCertPem).toBe(results[0].caCertPem);
});

test('a ca.crt that does not match the CA key is never overwritten: start-up fails with a clear message', async () => {
  // Same bucket (so cluster/ca.crt from the first test is there), another prefix: a new, different CA key.
  await expect(initializer(`nstance/${name}-other/`)()).rejects.toThrow(/does not match the CA key in secret nstance\/.*-other\/ca-key/);
});
