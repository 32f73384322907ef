/**
 * shard.infra.assume_role on moto's STS: the clients sign with the role's credentials (a round trip:
 * AssumeRole with the ExternalId, then calls as the assumed role), and a wrong ExternalId is refused with a
 * clear error. moto does not evaluate trust policies, so it accepts any ExternalId (asserted below, so the
 * day it starts checking, this says so): the refusal comes from the fault layer, which enforces the role's
 * trust condition (sts:ExternalId) the way IAM would.
 *
 * Then the same for a whole worker process (`nstance worker`, behind the fault proxy, which records each
 * call's signing key from its SigV4 Authorization header and plays the trust policy): once it reads a config
 * with assume_role, every call of its activities and of its agent API is signed with the key AssumeRole
 * answered, and a wrong external_id stops it at start naming the role and the field.
 */
import { DescribeAvailabilityZonesCommand } from '@aws-sdk/client-ec2';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { assumeRoleCredentials, assumeRoleSettings } from '../../adapters/aws/assume-role';
import { createAwsClients, destroyAwsClients } from '../../adapters/aws/clients';
import { s3Keys } from '../../common/names';
import { awsError, FaultLayer, MOTO_ACCOUNT } from '../support/faults';
import { LeaderStack, TEST_READER_KEY } from '../support/leader-stack';
import { stackEnv } from '../support/stack-env';
import { workerCalls } from '../support/worker-proof';

jest.setTimeout(180_000);

const env = stackEnv();
const ROLE = 'arn:aws:iam::210987654321:role/nstance-fleet';
const operator = { accessKeyId: 'test', secretAccessKey: 'test' };

/** The trust policy's ExternalId condition, enforced where moto does not. */
function enforceExternalId(faults: FaultLayer, expected: string): FaultLayer {
  return faults.failBefore(
    (command, input) => command === 'AssumeRole' && input.ExternalId !== expected,
    () => awsError('AccessDenied', `User: arn:aws:iam::123456789012:user/operator is not authorized to perform: sts:AssumeRole on resource: ${ROLE}`),
    1_000,
  );
}

function clientsFor(externalId: string, faults: FaultLayer) {
  const settings = assumeRoleSettings({ role_arn: ROLE, external_id: externalId, session_name: 'nstance-test', duration: '15m' }, 'test');
  const credentials = assumeRoleCredentials(settings, { region: env.region, endpoint: env.awsEndpoint, masterCredentials: operator, stsPlugins: [faults.plugin()] });
  return { credentials, aws: createAwsClients({ region: env.region, endpoint: env.awsEndpoint, credentials }) };
}

test('round trip: every client signs as the assumed role, one AssumeRole (with the ExternalId) serving them all', async () => {
  const faults = enforceExternalId(new FaultLayer(), 'tenant-42');
  const { credentials, aws } = clientsFor('tenant-42', faults);
  try {
    const zones = await aws.ec2.send(new DescribeAvailabilityZonesCommand({}));
    expect(zones.AvailabilityZones?.length).toBeGreaterThan(0);
    const sts = new STSClient({ region: env.region, endpoint: env.awsEndpoint, credentials });
    const me = await sts.send(new GetCallerIdentityCommand({}));
    sts.destroy();
    expect(me.Arn).toBe('arn:aws:sts::210987654321:assumed-role/nstance-fleet/nstance-test');
    const assumed = faults.callsOf('AssumeRole');
    expect(assumed).toHaveLength(1);
    expect(assumed[0].input).toMatchObject({ RoleArn: ROLE, ExternalId: 'tenant-42', RoleSessionName: 'nstance-test', DurationSeconds: 900 });
    expect((await credentials()).accessKeyId).not.toBe(operator.accessKeyId);
    expect(credentials.fetches()).toBe(1);
  } finally {
    destroyAwsClients(aws);
  }
});

test('a wrong ExternalId is refused with an error naming the role and the setting to check', async () => {
  // moto itself accepts it: it does not evaluate the role's trust policy.
  const sts = new STSClient({ region: env.region, endpoint: env.awsEndpoint, credentials: operator });
  await expect(sts.send(new AssumeRoleCommand({ RoleArn: ROLE, RoleSessionName: 'probe', ExternalId: 'wrong' }))).resolves.toBeDefined();
  sts.destroy();

  const faults = enforceExternalId(new FaultLayer(), 'tenant-42');
  const { aws } = clientsFor('tenant-41', faults);
  try {
    await expect(aws.ec2.send(new DescribeAvailabilityZonesCommand({}))).rejects.toThrow(
      /sts:AssumeRole arn:aws:iam::210987654321:role\/nstance-fleet failed: AccessDenied: .*check shard\.infra\.assume_role\.external_id \("tenant-41"\)/,
    );
    expect(faults.callsOf('AssumeRole').map((c) => c.outcome)).toEqual(['injected']);
  } finally {
    destroyAwsClients(aws);
  }
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
    // Nothing but the config read and the refused AssumeRole reached AWS.
    const calls = workerCalls(stack.proxy.wire, [TEST_READER_KEY]);
    expect(calls.map((c) => `${c.service}:${c.command} ${c.outcome}`)).toEqual(['s3:GetObject ok', 'sts:AssumeRole AccessDenied']);
  });
});
