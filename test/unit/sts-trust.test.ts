/**
 * The fault proxy's stand-in for IAM's AssumeRole evaluation (moto's STS evaluates nothing): each
 * AssumeRole of the role is judged by the policy simulator against the documents `nstance iam policy
 * --cross-account` generates, with the caller behind the signing key and the request's ExternalId.
 */
import { parseConfigText } from '../../common/config';
import { StsTrust, trustFor, TEST_OPERATOR } from '../support/sts-trust';
import { exampleWith, setPath } from './config/example';

const configFor = (role: string) => parseConfigText(exampleWith((c) => setPath(c, 'shard.infra.assume_role', { role_arn: role, external_id: 'tenant-7' })), 'config.jsonc');
const form = (role: string, externalId?: string) => new URLSearchParams({ Action: 'AssumeRole', RoleArn: role, RoleSessionName: 's', ...(externalId ? { ExternalId: externalId } : {}) });

describe.each([
  ['another account', 'arn:aws:iam::210987654321:role/nstance-fleet'],
  ["the operator's own account", 'arn:aws:iam::123456789012:role/nstance-shard'],
])('AssumeRole of a role in %s, evaluated against the generated trust', (_where, role) => {
  const sts = new StsTrust({ ...trustFor(configFor(role)), identities: { test: TEST_OPERATOR, other: 'arn:aws:iam::123456789012:user/intruder' } });

  it('allows the trusted operator with the ExternalId', async () => {
    await expect(sts.refusal(form(role, 'tenant-7'), 'test', 'us-east-1')).resolves.toBeUndefined();
  });

  it.each([
    ['a wrong ExternalId', 'tenant-8', 'test', TEST_OPERATOR, 'us-east-1'],
    ['no ExternalId', undefined, 'test', TEST_OPERATOR, 'us-east-1'],
    ['a principal the trust policy does not name', 'tenant-7', 'other', 'arn:aws:iam::123456789012:user/intruder', 'us-east-1'],
    ['an unlisted key (the user of its name)', 'tenant-7', 'stray', 'arn:aws:iam::123456789012:user/stray', 'us-east-1'],
    // The operator's sts:AssumeRole is bounded to the shard's region (aws:RequestedRegion of the regional STS endpoint).
    ["STS of another region than the shard's", 'tenant-7', 'test', TEST_OPERATOR, 'eu-west-1'],
    ['a request that names no region', 'tenant-7', 'test', TEST_OPERATOR, undefined],
  ])('refuses %s, AccessDenied naming the caller and the role', async (_what, externalId, key, principal, region) => {
    const refused = await sts.refusal(form(role, externalId), key, region);
    expect(refused).toMatchObject({ status: 403, outcome: 'AccessDenied' });
    expect(refused?.body.toString()).toContain(`<Code>AccessDenied</Code><Message>User: ${principal} is not authorized to perform: sts:AssumeRole on resource: ${role}</Message>`);
  });

  it('passes another role through (not the one it was told of)', async () => {
    await expect(sts.refusal(form('arn:aws:iam::123456789012:role/unrelated', 'x'), 'other', 'us-east-1')).resolves.toBeUndefined();
  });
});
