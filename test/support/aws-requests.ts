/**
 * Names the AWS call an HTTP request to the emulator makes, so the fault proxy can
 * count calls per action for every service the worker uses, not only EC2:
 *
 * - Query APIs (form-encoded `Action=…`): EC2, ELBv2, IAM, STS, told apart by `Version`;
 * - JSON APIs (`X-Amz-Target: secretsmanager.GetSecretValue`): the target's prefix and action;
 * - S3 (REST, path-style as the SDK sends it to an emulator): the operation from the method,
 *   the path and the query, with the object key as the resource.
 */
import type { IncomingHttpHeaders } from 'node:http';

export interface AwsCall {
  /** ec2, elasticloadbalancing, iam, sts, secretsmanager, s3, moto (the emulator's own API), or unknown. */
  service: string;
  action: string;
  /** S3: the object key (without the bucket); otherwise unset. */
  resource?: string;
}

const QUERY_VERSIONS: Record<string, string> = {
  '2016-11-15': 'ec2',
  '2015-12-01': 'elasticloadbalancing',
  '2010-05-08': 'iam',
  '2011-06-15': 'sts',
};

export function classifyRequest(method: string, url: string, headers: IncomingHttpHeaders, form?: URLSearchParams): AwsCall {
  const action = form?.get('Action');
  if (form && action) return { service: QUERY_VERSIONS[form.get('Version') ?? ''] ?? `query:${form.get('Version') ?? '?'}`, action };
  const target = headers['x-amz-target'];
  if (typeof target === 'string' && target.includes('.')) {
    const dot = target.lastIndexOf('.');
    return { service: target.slice(0, dot).toLowerCase(), action: target.slice(dot + 1) };
  }
  const parsed = new URL(url, 'http://emulator');
  if (parsed.pathname.startsWith('/moto-api')) return { service: 'moto', action: parsed.pathname };
  return s3Call(method.toUpperCase(), parsed, headers);
}

function s3Call(method: string, url: URL, headers: IncomingHttpHeaders): AwsCall {
  const [, , ...rest] = url.pathname.split('/');
  const key = decodeURIComponent(rest.join('/'));
  const q = url.searchParams;
  const onObject = key.length > 0;
  const action = (() => {
    if (method === 'GET') return onObject ? 'GetObject' : q.get('list-type') === '2' ? 'ListObjectsV2' : q.has('location') ? 'GetBucketLocation' : 'ListObjects';
    if (method === 'HEAD') return onObject ? 'HeadObject' : 'HeadBucket';
    if (method === 'PUT') return onObject ? (headers['x-amz-copy-source'] ? 'CopyObject' : 'PutObject') : 'CreateBucket';
    if (method === 'DELETE') return onObject ? 'DeleteObject' : 'DeleteBucket';
    if (method === 'POST') return q.has('delete') ? 'DeleteObjects' : 'PostObject';
    return method;
  })();
  return onObject ? { service: 's3', action, resource: key } : { service: 's3', action };
}

/**
 * What an S3 key is, for counting reads and writes by kind: `shard/<shard>/config.jsonc` →
 * "config.jsonc", `shard/<shard>/audit/2026-…` → "audit/", `cluster/ca.crt` → "cluster/ca.crt".
 */
export function s3KeyKind(key: string): string {
  const parts = key.split('/');
  if (parts[0] === 'shard' && parts.length >= 3) return parts.length === 3 ? (parts[2] as string) : `${parts[2]}/`;
  if (parts[0] === 'cluster') return parts.length <= 2 ? key : `cluster/${parts[1]}/`;
  return parts.length === 1 ? key : `${parts[0]}/`;
}

/** The error code of an AWS error answer (XML `<Code>`, or JSON `__type`), if the body has one. */
export function errorCodeOf(body: Buffer): string | undefined {
  const head = body.subarray(0, 4096).toString('utf8');
  const xml = /<Code>([^<]+)<\/Code>/.exec(head)?.[1];
  if (xml) return xml;
  const json = /"__type"\s*:\s*"([^"]+)"/.exec(head)?.[1];
  return json?.split('#').pop();
}
