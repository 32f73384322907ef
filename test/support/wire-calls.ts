/**
 * AWS calls as they cross the wire, for processes the in-process fault layer cannot wrap (worker OS
 * processes behind the fault proxy): the call named as the SDK names it, its input rebuilt in the SDK's
 * shape from the HTTP request (enough of it for iam-calls.ts to say what IAM authorises), and who signed
 * it (the access key id of the SigV4 Authorization header) with which SDK retry budget.
 *
 * - EC2 Query (`InstanceId.1`, `TagSpecification.1.Tag.1.Key`): lists become the SDK's plural members;
 * - other Query APIs (ELBv2, STS: `Targets.member.1.Id`): lists under `member`;
 * - JSON APIs (Secrets Manager, SSM): the body is the SDK's input;
 * - S3 (path-style REST): Bucket and Key from the path, Prefix from the query, DeleteObjects' keys from its body.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { classifyRequest } from './aws-requests';

export interface WireCall {
  /** ec2, elasticloadbalancing, sts, secretsmanager, amazonssm, s3, moto… (aws-requests.ts). */
  service: string;
  /** The SDK's command name without "Command": RunInstances, GetObject, GetSecretValue… */
  command: string;
  input: Record<string, unknown>;
  /** The access key id that signed the request; undefined when it was not signed. */
  accessKeyId?: string;
  /** The SDK client's retry budget (`amz-sdk-request: attempt=1; max=N`): activities' clients make 1 attempt, the agent API's the SDK's default. */
  maxAttempts?: number;
  /** "ok" or the AWS error code of the answer. */
  outcome: string;
  at: number;
}

/** The access key id of a SigV4 `Authorization: AWS4-HMAC-SHA256 Credential=AKID/date/region/service/aws4_request, …` header. */
export function accessKeyOf(headers: IncomingHttpHeaders): string | undefined {
  const auth = headers.authorization;
  return typeof auth === 'string' ? /Credential=([^/,\s]+)\//.exec(auth)?.[1] : undefined;
}

/** The region a SigV4 request is signed for (its credential scope): the endpoint's region, aws:RequestedRegion to IAM. */
export function signedRegionOf(headers: IncomingHttpHeaders): string | undefined {
  const auth = headers.authorization;
  return typeof auth === 'string' ? /Credential=[^/,\s]+\/\d{8}\/([^/,\s]+)\//.exec(auth)?.[1] : undefined;
}

function maxAttemptsOf(headers: IncomingHttpHeaders): number | undefined {
  const value = headers['amz-sdk-request'];
  const max = typeof value === 'string' ? /max=(\d+)/.exec(value)?.[1] : undefined;
  return max === undefined ? undefined : Number(max);
}

/** EC2 Query list names whose SDK member is not simply the name plus "s". */
const EC2_LIST_MEMBERS: Record<string, string> = { ResourceId: 'Resources' };

type Tree = Record<string, unknown>;

/** `A.1.B.2.C=v` → { A: [{ B: [, { C: v }] }] } (1-based indices); `member` segments of awsQuery lists are dropped. */
export function queryInput(form: URLSearchParams, ec2: boolean): Tree {
  const root: Tree = {};
  for (const [key, value] of form) {
    if (key === 'Action' || key === 'Version') continue;
    const parts = key.split('.').filter((p) => p !== 'member');
    // Arrays are indexed by the 1-based position, less one, as a string key: JavaScript arrays take those too.
    let node = root;
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i] as string;
      const slot = Array.isArray(node) ? String(Number(part) - 1) : part;
      if (i === parts.length - 1) {
        node[slot] = value;
        break;
      }
      node[slot] ??= /^\d+$/.test(parts[i + 1] as string) ? [] : {};
      node = node[slot] as Tree;
    }
  }
  return ec2 ? ec2Members(root) : root;
}

function ec2Members(value: unknown): Tree {
  const rename = (v: unknown): unknown => (Array.isArray(v) ? v.map(rename) : v && typeof v === 'object' ? ec2Members(v) : v);
  const out: Tree = {};
  for (const [k, v] of Object.entries(value as Tree)) out[Array.isArray(v) ? (EC2_LIST_MEMBERS[k] ?? `${k}s`) : k] = rename(v);
  return out;
}

function xmlText(s: string): string {
  return s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
}

function s3Input(url: string, command: string, body: Buffer): Tree {
  const parsed = new URL(url, 'http://emulator');
  const [, bucket = '', ...rest] = parsed.pathname.split('/');
  const input: Tree = { Bucket: decodeURIComponent(bucket) };
  if (rest.length > 0 && rest.join('/') !== '') input.Key = decodeURIComponent(rest.join('/'));
  const prefix = parsed.searchParams.get('prefix');
  if (prefix !== null) input.Prefix = prefix;
  if (command === 'DeleteObjects') {
    input.Delete = { Objects: [...body.toString('utf8').matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => ({ Key: xmlText(m[1] as string) })) };
  }
  return input;
}

/** The call an HTTP request to AWS makes, in the SDK's terms. */
export function wireCallOf(method: string, url: string, headers: IncomingHttpHeaders, body: Buffer, outcome: string, at = Date.now()): WireCall {
  const form = method === 'POST' && /x-www-form-urlencoded/.test(headers['content-type'] ?? '') ? new URLSearchParams(body.toString('utf8')) : undefined;
  const call = classifyRequest(method, url, headers, form);
  const input = (() => {
    if (form?.get('Action')) return queryInput(form, call.service === 'ec2');
    if (typeof headers['x-amz-target'] === 'string') {
      try {
        return JSON.parse(body.toString('utf8') || '{}') as Tree;
      } catch {
        return {};
      }
    }
    return call.service === 's3' ? s3Input(url, call.action, body) : {};
  })();
  return { service: call.service, command: call.action, input, accessKeyId: accessKeyOf(headers), maxAttempts: maxAttemptsOf(headers), outcome, at };
}
