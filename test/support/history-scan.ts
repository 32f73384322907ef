/**
 * Reads histories through the raw WorkflowService (no data converter, no codec: what Temporal's
 * database and anyone with read access to it see) and reports two kinds of leak:
 * - a payload that is not encrypted (every payload the project writes goes through the codec;
 *   exempt: search attributes, which the server must index and which hold ids only, and the SDK's
 *   own patch markers);
 * - a known secret anywhere in an event's bytes, payload or not: secret values from Secrets
 *   Manager, Parameter Store SecureStrings, the plaintext of every object-storage secret (opened
 *   with the keys the tests recorded, test/support/secret-ledger.ts) and those keys, the values
 *   tests recorded, userdata (templates and what instances were launched with), the payload
 *   codec's key (with it, every encrypted payload opens), and anything shaped like a
 *   registration nonce (a JWS) or a PEM private key.
 */
import { ListSecretsCommand, GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ListBucketsCommand, GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { DescribeParametersCommand, GetParametersCommand, type SSMClient } from '@aws-sdk/client-ssm';
import type { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import { parse as parseJsonc } from 'jsonc-parser';
import { listKeys } from './emulator';
import { ENCRYPTED_ENCODING } from '../../adapters/temporal/payload-codec';
import { decryptSecret } from '../../adapters/secrets/crypto';
import { OBJECT_SECRETS_ROOT } from '../../adapters/secrets/object-storage';
import { s3Keys } from '../../common/names';
import { readSecretLedger, type SecretLedger } from './secret-ledger';
import { TEST_PAYLOAD_KEY } from './payload-key';

/** The label a leaked payload codec key is reported under. */
export const PAYLOAD_KEY_LABEL = 'the payload codec key (test/support/payload-key.ts)';

export interface KnownSecret {
  label: string;
  needle: string;
}

export interface ScanFinding {
  workflowId: string;
  runId: string;
  eventId: string;
  problem: string;
}

export interface ScanReport {
  executions: number;
  events: number;
  payloads: number;
  encryptedPayloads: number;
  findings: ScanFinding[];
}

/** A fragment this long of a secret is a leak on its own, and survives JSON escaping when cut from one line. */
const FRAGMENT_CHARS = 40;
const PATTERNS: { label: string; pattern: RegExp }[] = [
  { label: 'a JWS (registration nonce shape)', pattern: /eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/ },
  { label: 'a PEM private key', pattern: /PRIVATE KEY-----/ },
];
const EXEMPT_FIELDS = new Set(['searchAttributes']);
/**
 * Patch markers (`patched()`): the SDK's core writes their details (the patch id and whether it is
 * deprecated) itself, past the codec. They name code versions, never data; the secret search below
 * still reads them.
 */
const EXEMPT_PATHS = /\.markerRecordedEventAttributes\.details\.patch-data\./;

export interface KnownSecrets {
  secrets: KnownSecret[];
  /** Object-storage secrets that no recorded key opens: their plaintext cannot be searched for. */
  unopened: string[];
}

/**
 * Secret values the emulator holds (Secrets Manager, Parameter Store SecureStrings, object storage
 * opened with the ledger's keys), the ledger's keys and values, and the userdata the shards' configs declare.
 */
export async function knownSecrets(aws: { secrets: SecretsManagerClient; s3: S3Client; ssm: SSMClient }, ledger: SecretLedger = readSecretLedger()): Promise<KnownSecrets> {
  const found: KnownSecret[] = [];
  for (const secret of await allSecrets(aws.secrets)) found.push(...fragments(`secret ${secret.name}`, secret.value));
  for (const parameter of await secureParameters(aws.ssm)) found.push(...fragments(`parameter ${parameter.name}`, parameter.value));
  const objects = await objectStorageSecrets(aws.s3, ledger.keys.map((k) => k.key));
  for (const secret of objects.opened) found.push(...fragments(`object-storage secret ${secret.where}`, secret.value));
  for (const { label, key } of ledger.keys) found.push({ label: `object-storage key (${label})`, needle: key.toString('base64') });
  for (const { label, value } of ledger.values) found.push(...fragments(`secret value (${label})`, value));
  for (const userdata of await configuredUserdata(aws.s3)) found.push(...fragments(`userdata of ${userdata.where}`, userdata.text, 24));
  // The codec key is in no store, only in the workers' environment: as configured (base64) and as hex.
  found.push({ label: PAYLOAD_KEY_LABEL, needle: TEST_PAYLOAD_KEY }, { label: PAYLOAD_KEY_LABEL, needle: Buffer.from(TEST_PAYLOAD_KEY, 'base64').toString('hex') });
  return { secrets: dedupe(found), unopened: objects.unopened };
}

/** Distinctive pieces of a secret: each line long enough to be one, cut to FRAGMENT_CHARS. */
export function fragments(label: string, value: string, minChars = 8): KnownSecret[] {
  return value
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line.length >= minChars && !/^-----(BEGIN|END) /.test(line) && !/^\{\{[^}]*\}\}$/.test(line))
    .map((line) => ({ label, needle: line.slice(0, FRAGMENT_CHARS) }));
}

export async function scanNamespace(connection: Connection, namespace: string, secrets: KnownSecret[], options: { exclude?: (workflowId: string) => boolean; query?: string } = {}): Promise<ScanReport> {
  const report: ScanReport = { executions: 0, events: 0, payloads: 0, encryptedPayloads: 0, findings: [] };
  const needles = secrets.map((s) => ({ label: s.label, bytes: Buffer.from(s.needle, 'utf8') }));
  for await (const info of listExecutions(connection, namespace, options.query ?? '')) {
    const workflowId = info.execution?.workflowId ?? '';
    const runId = info.execution?.runId ?? '';
    if (options.exclude?.(workflowId)) continue;
    report.executions++;
    await scanExecution(connection, namespace, { workflowId, runId }, needles, report);
  }
  return report;
}

type ExecutionInfo = temporal.api.workflow.v1.IWorkflowExecutionInfo;
const UNIMPLEMENTED = 12;

/**
 * Every execution (every run) of the namespace, by visibility's List; where the server has no List
 * (the time-skipping test server), by its open and closed listings, which cannot take a query.
 */
async function* listExecutions(connection: Connection, namespace: string, query: string): AsyncGenerator<ExecutionInfo> {
  const service = connection.workflowService;
  try {
    yield* pages((nextPageToken) => service.listWorkflowExecutions({ namespace, pageSize: 500, nextPageToken, query }));
    return;
  } catch (err) {
    if ((err as { code?: number }).code !== UNIMPLEMENTED || query !== '') throw err;
  }
  // The test server's clock runs ahead (skipped time): a year and more past the real one.
  const since = { earliestTime: msToTs(0), latestTime: msToTs(Date.now() + 400 * 86_400_000) };
  yield* pages((nextPageToken) => service.listOpenWorkflowExecutions({ namespace, maximumPageSize: 500, nextPageToken, startTimeFilter: since }));
  yield* pages((nextPageToken) => service.listClosedWorkflowExecutions({ namespace, maximumPageSize: 500, nextPageToken, startTimeFilter: since }));
}

async function* pages(list: (token: Uint8Array | undefined) => Promise<{ executions?: ExecutionInfo[] | null; nextPageToken?: Uint8Array | null }>): AsyncGenerator<ExecutionInfo> {
  let nextPageToken: Uint8Array | undefined;
  do {
    const page = await list(nextPageToken);
    yield* page.executions ?? [];
    nextPageToken = page.nextPageToken && page.nextPageToken.length > 0 ? page.nextPageToken : undefined;
  } while (nextPageToken);
}

async function scanExecution(connection: Connection, namespace: string, execution: { workflowId: string; runId: string }, needles: { label: string; bytes: Buffer }[], report: ScanReport): Promise<void> {
  let nextPageToken: Uint8Array | undefined;
  do {
    const page = await connection.workflowService.getWorkflowExecutionHistory({ namespace, execution, nextPageToken, maximumPageSize: 1000 });
    for (const event of page.history?.events ?? []) {
      report.events++;
      const eventId = String(event.eventId ?? '?');
      const finding = (problem: string) => report.findings.push({ ...execution, eventId, problem });
      walkPayloads(event as object, String(event.eventType ?? 'event'), (path, payload) => {
        report.payloads++;
        const encoding = Buffer.from(payload.metadata?.encoding ?? []).toString('utf8');
        if (encoding === ENCRYPTED_ENCODING) report.encryptedPayloads++;
        else if (!EXEMPT_PATHS.test(path)) finding(`plaintext payload at ${path} (encoding "${encoding}")`);
      });
      const bytes = Buffer.from(temporal.api.history.v1.HistoryEvent.encode(event).finish());
      for (const needle of needles) if (bytes.includes(needle.bytes)) finding(`contains ${needle.label}`);
      const text = bytes.toString('latin1');
      for (const { label, pattern } of PATTERNS) if (pattern.test(text)) finding(`contains ${label}`);
    }
    nextPageToken = page.nextPageToken && page.nextPageToken.length > 0 ? page.nextPageToken : undefined;
  } while (nextPageToken);
}

/** Every Payload message inside an event, with its field path (search attributes left out). */
function walkPayloads(value: object, path: string, visit: (path: string, payload: temporal.api.common.v1.IPayload) => void): void {
  if (isPayload(value)) return visit(path, value);
  for (const [key, child] of Object.entries(value)) {
    if (child === null || typeof child !== 'object' || ArrayBuffer.isView(child) || EXEMPT_FIELDS.has(key)) continue;
    walkPayloads(child as object, `${path}.${key}`, visit);
  }
}

/** A Payload message by shape (the proto classes are reflection types here, not constructors): metadata of bytes. */
function isPayload(value: object): value is temporal.api.common.v1.IPayload {
  const { metadata } = value as { metadata?: unknown };
  return metadata !== null && typeof metadata === 'object' && !ArrayBuffer.isView(metadata) && Object.values(metadata).some((v) => ArrayBuffer.isView(v)) && 'data' in value;
}

async function allSecrets(client: SecretsManagerClient): Promise<{ name: string; value: string }[]> {
  const out: { name: string; value: string }[] = [];
  let NextToken: string | undefined;
  do {
    const page = await client.send(new ListSecretsCommand({ NextToken, MaxResults: 100 }));
    for (const entry of page.SecretList ?? []) {
      const value = await client.send(new GetSecretValueCommand({ SecretId: entry.ARN ?? entry.Name })).catch(() => undefined);
      const text = value?.SecretString ?? (value?.SecretBinary ? Buffer.from(value.SecretBinary).toString('base64') : undefined);
      if (text) out.push({ name: entry.Name ?? '?', value: text });
    }
    NextToken = page.NextToken;
  } while (NextToken);
  return out;
}

/** Every SecureString in Parameter Store, decrypted. */
async function secureParameters(ssm: SSMClient): Promise<{ name: string; value: string }[]> {
  const names: string[] = [];
  let NextToken: string | undefined;
  do {
    const page = await ssm.send(new DescribeParametersCommand({ NextToken, MaxResults: 50, ParameterFilters: [{ Key: 'Type', Values: ['SecureString'] }] }));
    names.push(...(page.Parameters ?? []).flatMap((p) => (p.Name ? [p.Name] : [])));
    NextToken = page.NextToken;
  } while (NextToken);
  const out: { name: string; value: string }[] = [];
  // GetParameters takes 10 names a call.
  for (let i = 0; i < names.length; i += 10) {
    const page = await ssm.send(new GetParametersCommand({ Names: names.slice(i, i + 10), WithDecryption: true }));
    for (const p of page.Parameters ?? []) if (p.Name && p.Value) out.push({ name: p.Name, value: p.Value });
  }
  return out;
}

/** Every object-storage secret (`cluster/<prefix><name>`, the CA certificate aside) of every bucket, opened with whichever key opens it. */
async function objectStorageSecrets(s3: S3Client, keys: Buffer[]): Promise<{ opened: { where: string; value: string }[]; unopened: string[] }> {
  const opened: { where: string; value: string }[] = [];
  const unopened: string[] = [];
  for (const bucket of (await s3.send(new ListBucketsCommand({}))).Buckets ?? []) {
    for (const key of (await listKeys(s3, bucket.Name ?? '', OBJECT_SECRETS_ROOT)).filter((k) => k !== s3Keys.caCert())) {
      const where = `s3://${bucket.Name}/${key}`;
      const body = await s3.send(new GetObjectCommand({ Bucket: bucket.Name, Key: key }));
      const blob = Buffer.from(await (body.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
      const plaintext = keys.map((k) => decryptSecret(blob, k)).find((p) => p !== undefined);
      if (plaintext) opened.push({ where, value: plaintext.toString('utf8') });
      else unopened.push(where);
    }
  }
  return { opened, unopened };
}

/** Every string under a `userdata` key of every shard config and groups file in every bucket. */
async function configuredUserdata(s3: S3Client): Promise<{ where: string; text: string }[]> {
  const out: { where: string; text: string }[] = [];
  for (const bucket of (await s3.send(new ListBucketsCommand({}))).Buckets ?? []) {
    const keys = (await listKeys(s3, bucket.Name ?? '', 'shard/')).filter((k) => /\/(config|groups)\.jsonc$/.test(k));
    for (const key of keys) {
      const body = await s3.send(new GetObjectCommand({ Bucket: bucket.Name, Key: key }));
      const parsed: unknown = parseJsonc(await (body.Body as { transformToString(): Promise<string> }).transformToString());
      collectUserdata(parsed, false, (text) => out.push({ where: `s3://${bucket.Name}/${key}`, text }));
    }
  }
  return out;
}

function collectUserdata(value: unknown, inside: boolean, found: (text: string) => void): void {
  if (typeof value === 'string') return void (inside && found(value));
  if (!value || typeof value !== 'object') return;
  for (const [key, child] of Object.entries(value)) collectUserdata(child, inside || key === 'userdata', found);
}

function dedupe(secrets: KnownSecret[]): KnownSecret[] {
  const seen = new Map<string, KnownSecret>();
  for (const s of secrets) if (!seen.has(s.needle)) seen.set(s.needle, s);
  return [...seen.values()];
}
