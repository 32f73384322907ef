/**
 * What moto's STS skips, for the fault proxy: a role's trust policy (an AssumeRole of the role without the
 * ExternalId its sts:ExternalId condition asks for is refused AccessDenied, as IAM answers it), and which
 * access keys AssumeRole handed out, so a test can tell calls signed as the role from the caller's own.
 */
import type { Upstream } from './proxy-http';

export interface RoleTrust {
  roleArn: string;
  externalId: string;
}

export class StsTrust {
  /** The access key ids STS answered AssumeRole with. */
  readonly assumedKeys = new Set<string>();

  constructor(private readonly trust?: RoleTrust) {}

  /** IAM's refusal of an AssumeRole (form-encoded) the trust policy does not allow; undefined when it does. */
  refusal(form: URLSearchParams): (Upstream & { outcome: string }) | undefined {
    if (!this.trust || form.get('RoleArn') !== this.trust.roleArn || form.get('ExternalId') === this.trust.externalId) return undefined;
    const message = `User: arn:aws:iam::123456789012:user/operator is not authorized to perform: sts:AssumeRole on resource: ${this.trust.roleArn}`;
    const xml = `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>${message}</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>`;
    return { status: 403, headers: { 'content-type': 'text/xml' }, body: Buffer.from(xml), outcome: 'AccessDenied' };
  }

  /** Notes the keys of a successful AssumeRole answer. */
  observe(answer: Upstream): void {
    if (answer.status !== 200) return;
    for (const m of answer.body.toString('utf8').matchAll(/<AccessKeyId>([^<]+)<\/AccessKeyId>/g)) this.assumedKeys.add(m[1] as string);
  }
}
