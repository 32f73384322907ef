/**
 * shard.infra.assume_role on moto's STS: the clients sign with the role's credentials (a round trip:
 * AssumeRole with the ExternalId, then calls as the assumed role), and a wrong ExternalId, or a caller the
 * role does not trust, is refused with a clear error. moto does not evaluate trust policies, so it accepts
 * any ExternalId (asserted below, so the day it starts checking, this says so): every AssumeRole goes
 * through the fault proxy, which evaluates it against the trust policy and the operator policy that
 * `nstance iam policy --cross-account` generates for the config (test/support/sts-trust.ts, with the
 * policy simulator), the caller being the identity behind the request's signing key.
 *
 * `nstance config apply` of such a shard checks its zone and subnets as the role, in the role's account.
 *
 * Then the same for a whole worker process (`nstance worker`, behind the fault proxy, which records each
 * call's signing key from its SigV4 Authorization header): once it reads a config with assume_role, every
 * call of its activities and of its agent API is signed with the key AssumeRole answered, and a wrong
 * external_id stops it at start naming the role and the field.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DescribeAvailabilityZonesCommand } from '@aws-sdk/client-ec2';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { assumeRoleCredentials, assumeRoleSettings } from '../../adapters/aws/assume-role';
import { createAwsClients, destroyAwsClients } from '../../adapters/aws/clients';
import { parseConfigText } from '../../common/config';
import { s3Keys } from '../../common/names';
import { Ec2FaultProxy } from '../support/fault-proxy';
import { FaultLayer, MOTO_ACCOUNT } from '../support/faults';
import type { SeedResult } from '../../scripts/seed-emulator';
import { runCli } from '../support/cli';
import { configText, seedShard, terminateShardWorkflows, testConfig } from '../support/fixtures';
import { createHarness, type Harness } from '../support/harness';
import { LeaderStack, TEST_READER_KEY } from '../support/leader-stack';
import { stackEnv } from '../support/stack-env';
import { TEST_OPERATOR, trustFor } from '../support/sts-trust';
import { workerCalls } from '../support/worker-proof';

jest.setTimeout(180_000);

const env = stackEnv();
const ROLE = 'arn:aws:iam::210987654321:role/nstance-fleet';
const operator = { accessKeyId: 'test', secretAccessKey: 'test' };
const INTRUDER = `arn:aws:iam::${MOTO_ACCOUNT}:user/intruder`;

/** The config the role's owner generated the trust for: this shard assumes ROLE with the ExternalId "tenant-42". */
const trusted = parseConfigText(
  configText({
    cluster: { id: 'xacct', storage: { provider: 's3', bucket: 'nstance-xacct' }, secrets: { provider: 'aws-secrets-manager' } },
    shard: { id: 'xacct', infra: { provider: 'aws', region: env.region, zone: `${env.region}a`, assume_role: { role_arn: ROLE, external_id: 'tenant-42' } }, subnet_pools: { private: ['subnet-0aaa'] } },
  }),
  'config.jsonc',
);

let sts: Ec2FaultProxy;
beforeAll(async () => {
  // The operator signs with "test"; "intruder" is another user of the operator's account, whom the trust does not name.
  sts = new Ec2FaultProxy({ target: env.awsEndpoint, trust: trustFor(trusted, TEST_OPERATOR, { test: TEST_OPERATOR, intruder: INTRUDER }) });
  await sts.start();
});
afterAll(() => sts?.close());

/** Clients of a shard that assumes ROLE with `externalId`, as `caller`; STS through the proxy, which evaluates the generated trust. */
function clientsFor(externalId: string, faults: FaultLayer, caller = operator) {
  const settings = assumeRoleSettings({ role_arn: ROLE, external_id: externalId, session_name: 'nstance-test', duration: '15m' }, 'test');
  const credentials = assumeRoleCredentials(settings, { region: env.region, endpoint: sts.url, masterCredentials: caller, stsPlugins: [faults.plugin()] });
  return { credentials, aws: createAwsClients({ region: env.region, endpoint: env.awsEndpoint, credentials }) };
}

test('round trip: every client signs as the assumed role, one AssumeRole (with the ExternalId) serving them all', async () => {
  const faults = new FaultLayer();
  const { credentials, aws } = clientsFor('tenant-42', faults);
  try {
    const zones = await aws.ec2.send(new DescribeAvailabilityZonesCommand({}));
    expect(zones.AvailabilityZones?.length).toBeGreaterThan(0);
    const me = new STSClient({ region: env.region, endpoint: env.awsEndpoint, credentials });
    const identity = await me.send(new GetCallerIdentityCommand({}));
    me.destroy();
    expect(identity.Arn).toBe('arn:aws:sts::210987654321:assumed-role/nstance-fleet/nstance-test');
    const assumed = faults.callsOf('AssumeRole');
    expect(assumed).toHaveLength(1);
    expect(assumed[0].input).toMatchObject({ RoleArn: ROLE, ExternalId: 'tenant-42', RoleSessionName: 'nstance-test', DurationSeconds: 900 });
    expect((await credentials()).accessKeyId).not.toBe(operator.accessKeyId);
    expect(credentials.fetches()).toBe(1);
    // Evaluated against the generated trust, not waved through.
    expect(sts.sts.verdicts).toContainEqual({ principal: TEST_OPERATOR, externalId: 'tenant-42', region: env.region, result: 'Allowed' });
  } finally {
    destroyAwsClients(aws);
  }
});

test('a wrong ExternalId is refused with an error naming the role and the setting to check', async () => {
  // moto itself accepts it: it does not evaluate the role's trust policy.
  const direct = new STSClient({ region: env.region, endpoint: env.awsEndpoint, credentials: operator });
  await expect(direct.send(new AssumeRoleCommand({ RoleArn: ROLE, RoleSessionName: 'probe', ExternalId: 'wrong' }))).resolves.toBeDefined();
  direct.destroy();

  const faults = new FaultLayer();
  const { aws } = clientsFor('tenant-41', faults);
  try {
    await expect(aws.ec2.send(new DescribeAvailabilityZonesCommand({}))).rejects.toThrow(
      new RegExp(`sts:AssumeRole arn:aws:iam::210987654321:role/nstance-fleet failed: AccessDenied: User: ${TEST_OPERATOR} is not authorized .*check shard\\.infra\\.assume_role\\.external_id \\("tenant-41"\\)`),
    );
    expect(faults.callsOf('AssumeRole').map((c) => c.outcome)).toEqual(['error']);
    expect(sts.sts.verdicts).toContainEqual({ principal: TEST_OPERATOR, externalId: 'tenant-41', region: env.region, result: 'ImplicitlyDenied' });
  } finally {
    destroyAwsClients(aws);
  }
});

test('a caller the trust policy does not name is refused, even with the right ExternalId', async () => {
  const faults = new FaultLayer();
  const { aws } = clientsFor('tenant-42', faults, { accessKeyId: 'intruder', secretAccessKey: 'test' });
  try {
    await expect(aws.ec2.send(new DescribeAvailabilityZonesCommand({}))).rejects.toThrow(
      new RegExp(`sts:AssumeRole arn:aws:iam::210987654321:role/nstance-fleet failed: AccessDenied: User: ${INTRUDER} is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::210987654321:role/nstance-fleet; .*and that it trusts this identity`),
    );
    expect(sts.sts.verdicts).toContainEqual({ principal: INTRUDER, externalId: 'tenant-42', region: env.region, result: 'ImplicitlyDenied' });
  } finally {
    destroyAwsClients(aws);
  }
});

describe('`nstance config apply` of a shard with shard.infra.assume_role', () => {
  // The CLI in-process, its AWS endpoint the proxy (which evaluates the trust and records each call's signing key).
  const shardRole = `arn:aws:iam::${MOTO_ACCOUNT}:role/nstance-shard`;
  let h: Harness;
  let seed: SeedResult;
  let proxy: Ec2FaultProxy;
  const configOf = (role: string) =>
    testConfig(seed, { shard: h.shard, bucket: h.bucket, size: 0, shardSettings: { infra: { provider: 'aws', region: seed.region, zone: seed.zone, assume_role: { role_arn: role, external_id: 'tenant-9' } } } });
  beforeAll(async () => {
    h = await createHarness({ shard: `xapply-${Date.now().toString(36)}`, bucket: `nstance-xapply-${Date.now().toString(36)}` });
    seed = await seedShard(h);
    proxy = new Ec2FaultProxy({ target: env.awsEndpoint, recordCalls: true, trust: trustFor(parseConfigText(configText(configOf(shardRole)), 'config.jsonc')) });
    await proxy.start();
  });
  afterAll(async () => {
    await proxy?.close();
    if (h) await terminateShardWorkflows(h.client, h.shard);
    await h?.close();
  });

  async function apply(config: Record<string, unknown>) {
    const file = path.join(os.tmpdir(), `xapply-${process.pid}-${Date.now()}.jsonc`);
    fs.writeFileSync(file, configText(config));
    const endpoint = process.env.AWS_ENDPOINT_URL;
    process.env.AWS_ENDPOINT_URL = proxy.url;
    try {
      return await runCli('config', 'apply', '-f', file, '--yes', '--json');
    } finally {
      process.env.AWS_ENDPOINT_URL = endpoint;
      fs.rmSync(file, { force: true });
    }
  }

  test("checks the zone and the pools' subnets as the shard's role; the config writes stay the operator's", async () => {
    const mark = proxy.wire.length;
    const out = await apply(configOf(shardRole));
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    const calls = proxy.wire.slice(mark);
    const assumed = [...proxy.sts.assumedKeys];
    expect(assumed).toHaveLength(1);
    const signer = (command: string) => [...new Set(calls.filter((c) => c.command === command).map((c) => c.accessKeyId))];
    expect(signer('AssumeRole')).toEqual([operator.accessKeyId]);
    expect(signer('DescribeAvailabilityZones')).toEqual(assumed);
    expect(signer('DescribeSubnets')).toEqual(assumed);
    expect(signer('PutObject')).toEqual([operator.accessKeyId]);
    expect(proxy.sts.verdicts.at(-1)).toEqual({ principal: TEST_OPERATOR, externalId: 'tenant-9', region: seed.region, result: 'Allowed' });
  });

  test("a role in another account reads that account's subnets: the operator's are not there, and the apply is refused naming them", async () => {
    // moto keeps each account's resources apart: the seeded subnets are in the operator's account only.
    const elsewhere = 'arn:aws:iam::210987654321:role/nstance-shard';
    const out = await apply(configOf(elsewhere));
    expect(out.code).toBe(1);
    expect(out.stderr).toContain(`shard.subnet_pools.private[0]: subnet ${seed.subnetIds[0]} does not exist in region ${seed.region}`);
    const zones = proxy.wire.filter((c) => c.command === 'DescribeAvailabilityZones').at(-1);
    expect(zones?.accessKeyId).not.toBe(operator.accessKeyId);
  });
});

describe('a worker process with shard.infra.assume_role', () => {
  // In moto's own account: moto keeps each account's resources apart by the signing key, and the seeded
  // bucket, ENI and subnets are there. Which account the role is in changes nothing of what is checked here.
  const shardRole = `arn:aws:iam::${MOTO_ACCOUNT}:role/nstance-shard`;
  const stacks: LeaderStack[] = [];
  afterAll(async () => {
    for (const s of stacks) await s.close();
  });

  test('signs every call of its activities and of its agent API with the assumed role\'s key, after one AssumeRole with the ExternalId', async () => {
    const stack = await LeaderStack.create({ shard: `xacct-${Date.now().toString(36)}`, assumeRole: { role_arn: shardRole, external_id: 'tenant-7', session_name: 'nstance-xacct' } });
    stacks.push(stack);
    const w = await stack.startWorker('x1');
    const { epoch } = await stack.waitForLeader(w, 90_000);
    expect(await stack.settledAnswering('x1', epoch)).toEqual([{ workerId: 'x1', epoch, agentApi: true }]);
    const calls = workerCalls(stack.proxy.wire, [TEST_READER_KEY]);
    const assumed = [...stack.proxy.sts.assumedKeys];
    expect(assumed).toHaveLength(1);
    expect(assumed[0]).not.toBe('test');
    // Evaluated against the trust generated for the config (the operator, ExternalId tenant-7), and allowed.
    expect(stack.proxy.sts.verdicts).toEqual([{ principal: TEST_OPERATOR, externalId: 'tenant-7', region: env.region, result: 'Allowed' }]);
    // Signed with the worker's own key: only the config read that says assume_role is set, and AssumeRole itself.
    const own = calls.filter((c) => c.accessKeyId !== assumed[0]);
    expect(own.map((c) => `${c.service}:${c.command}`)).toEqual(['s3:GetObject', 'sts:AssumeRole']);
    expect(own[0]?.input.Key).toBe(s3Keys.config(stack.shard));
    expect(own[1]?.input).toMatchObject({ RoleArn: shardRole, ExternalId: 'tenant-7', RoleSessionName: 'nstance-xacct', DurationSeconds: '900' });
    // Everything else, of every service, with the assumed key: the activities' clients (one SDK attempt) and the agent API's (the SDK's retries) alike.
    const signed = calls.filter((c) => c.accessKeyId === assumed[0]);
    expect([...new Set(signed.map((c) => c.service))]).toEqual(expect.arrayContaining(['s3', 'ec2']));
    expect([...new Set(signed.map((c) => c.maxAttempts))].sort()).toEqual([1, 3]);
  });

  test('a wrong external_id stops it at start, naming the role and the field to check; it never runs on its own credentials', async () => {
    const stack = await LeaderStack.create({ shard: `xbad-${Date.now().toString(36)}`, assumeRole: { role_arn: shardRole, external_id: 'tenant-8' }, trustedExternalId: 'tenant-7' });
    stacks.push(stack);
    const w = await stack.startWorker('x2');
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([w.exited, new Promise<string>((resolve) => (timer = setTimeout(() => resolve('still running'), 60_000)))]);
    clearTimeout(timer);
    expect(code).toBe(1);
    expect(w.log()).toMatch(
      new RegExp(`sts:AssumeRole ${shardRole.replace(/[/.]/g, '\\$&')} failed: AccessDenied: .*check shard\\.infra\\.assume_role\\.external_id \\("tenant-8"\\)`),
    );
    // Refused by the generated trust (it requires tenant-7), not by a check of the test's own.
    expect(stack.proxy.sts.verdicts).toEqual([{ principal: TEST_OPERATOR, externalId: 'tenant-8', region: env.region, result: 'ImplicitlyDenied' }]);
    // Nothing but the config read and the refused AssumeRole reached AWS.
    const calls = workerCalls(stack.proxy.wire, [TEST_READER_KEY]);
    expect(calls.map((c) => `${c.service}:${c.command} ${c.outcome}`)).toEqual(['s3:GetObject ok', 'sts:AssumeRole AccessDenied']);
  });
});
