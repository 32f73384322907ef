/**
 * shard.infra.assume_role on moto's STS: the clients sign with the role's credentials (a round trip:
 * AssumeRole with the ExternalId, then calls as the assumed role), and a wrong ExternalId is refused with a
 * clear error. moto does not evaluate trust policies, so it accepts any ExternalId (asserted below, so the
 * day it starts checking, this says so): the refusal comes from the fault layer, which enforces the role's
 * trust condition (sts:ExternalId) the way IAM would.
 */
import { DescribeAvailabilityZonesCommand } from '@aws-sdk/client-ec2';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { assumeRoleCredentials, assumeRoleSettings } from '../../adapters/aws/assume-role';
import { createAwsClients, destroyAwsClients } from '../../adapters/aws/clients';
import { awsError, FaultLayer } from '../support/faults';
import { stackEnv } from '../support/stack-env';

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
