/**
 * What moto's STS skips, for the fault proxy: IAM's evaluation of an AssumeRole. moto hands out keys for
 * any role, any caller and any ExternalId; here each AssumeRole of the configured role is evaluated, by
 * the policy simulator (@cloud-copilot/iam-simulate), against the documents `nstance iam policy
 * --cross-account` generates for the config: the role's trust policy (principal and sts:ExternalId) and
 * the operator's sts:AssumeRole permission. The caller is the identity behind the request's signing key.
 * A request the documents do not allow is refused AccessDenied, as IAM answers it. It also notes which
 * access keys AssumeRole handed out, so a test can tell calls signed as the role from the caller's own.
 */
import type { NstanceConfig } from '../../common/config';
import { crossAccountDocuments, type CrossAccountDocuments } from '../../common/iam/documents';
import { MOTO_ACCOUNT } from './faults';
import { evaluate } from './iam-proof';
import type { Upstream } from './proxy-http';

export interface RoleTrust {
  roleArn: string;
  /** The generated documents (crossAccountDocuments) for the config that assumes `roleArn`. */
  documents: CrossAccountDocuments;
  /** The identity the documents were generated for (`--operator`): the one the operator policy is attached to. */
  operator: string;
  /** Who signs with which access key; a key not listed is the user of its own name in moto's account. */
  identities: Record<string, string>;
}

/** The operator's identity in the tests: the user whose key ("test") the worker processes and the tests sign with. */
export const TEST_OPERATOR = `arn:aws:iam::${MOTO_ACCOUNT}:user/nstance-operator`;

/** The trust a role's owner sets up for `config` (its shard.infra.assume_role) and `operator`, as `nstance iam policy --cross-account --operator` prints it. */
export function trustFor(config: NstanceConfig, operator = TEST_OPERATOR, identities: Record<string, string> = { test: operator }): RoleTrust {
  const documents = crossAccountDocuments(config, { operatorPrincipal: operator });
  const roleArn = config.shard.infra.assume_role?.role_arn;
  if (!documents || !roleArn) throw new Error(`trustFor: shard ${config.shard.id} has no shard.infra.assume_role`);
  return { roleArn, documents, operator, identities };
}

/** The principal behind an access key, as RoleTrust.identities says. */
export function identityOf(trust: Pick<RoleTrust, 'identities'>, accessKeyId: string | undefined): string {
  const key = accessKeyId ?? 'anonymous';
  return trust.identities[key] ?? `arn:aws:iam::${MOTO_ACCOUNT}:user/${key}`;
}

/** IAM's verdict on `principal` assuming `roleArn` with `externalId`, asked of STS in `region`, from the generated documents. */
export async function assumeRoleVerdict(trust: RoleTrust, principal: string, roleArn: string, externalId: string | undefined, region: string | undefined): Promise<string> {
  const context = { ...(region === undefined ? {} : { 'aws:RequestedRegion': region }), ...(externalId === undefined ? {} : { 'sts:ExternalId': externalId }) };
  const [verdict] = await evaluate(
    [{ action: 'sts:AssumeRole', resource: roleArn, context }],
    // The operator policy is attached to the operator's identity only: another caller has none of its permissions.
    principal === trust.operator ? [trust.documents.operatorPolicy] : [],
    roleArn.split(':')[4],
    { principal, resourcePolicy: trust.documents.roleTrustPolicy },
  );
  return verdict?.result ?? 'no verdict';
}

export class StsTrust {
  /** The access key ids STS answered AssumeRole with. */
  readonly assumedKeys = new Set<string>();
  /** Every AssumeRole of the role evaluated, with its verdict. */
  readonly verdicts: { principal: string; externalId?: string; region?: string; result: string }[] = [];

  constructor(private readonly trust?: RoleTrust) {}

  /** IAM's refusal of an AssumeRole (form-encoded) the generated documents do not allow; undefined when they do. */
  async refusal(form: URLSearchParams, accessKeyId: string | undefined, region: string | undefined): Promise<(Upstream & { outcome: string }) | undefined> {
    const roleArn = form.get('RoleArn') ?? '';
    if (!this.trust || roleArn !== this.trust.roleArn) return undefined;
    const principal = identityOf(this.trust, accessKeyId);
    const externalId = form.get('ExternalId') ?? undefined;
    const result = await assumeRoleVerdict(this.trust, principal, roleArn, externalId, region);
    this.verdicts.push({ principal, ...(externalId === undefined ? {} : { externalId }), ...(region === undefined ? {} : { region }), result });
    if (result === 'Allowed') return undefined;
    const message = `User: ${principal} is not authorized to perform: sts:AssumeRole on resource: ${roleArn}`;
    const xml = `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>${message}</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>`;
    return { status: 403, headers: { 'content-type': 'text/xml' }, body: Buffer.from(xml), outcome: 'AccessDenied' };
  }

  /** Notes the keys of a successful AssumeRole answer. */
  observe(answer: Upstream): void {
    if (answer.status !== 200) return;
    for (const m of answer.body.toString('utf8').matchAll(/<AccessKeyId>([^<]+)<\/AccessKeyId>/g)) this.assumedKeys.add(m[1] as string);
  }
}
