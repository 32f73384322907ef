/**
 * POST /v1/register: nonce + the agent's Ed25519 public key → a client
 * certificate (CN = instance id) signed by the cluster CA. Order matters: every
 * check that only reads comes first; the nonce is then spent (create-only S3
 * object, so a replay fails on any worker); only then is a certificate issued,
 * logged, kept with the spent nonce (an agent asking again gets that one), and
 * the instance workflow signalled. Every write re-checks the
 * leadership the request started under (LeaderFence) and carries its epoch.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { WorkflowNotFoundError } from '@temporalio/client';
import { instanceWorkflowId } from '../../common/names';
import { agentRegisteredSignal, type AgentRegistration } from '../../workflows/definitions';
import { writeCertLog } from '../../activities/pki/certlog';
import { NonceError, verifyNonce, type NonceClaims } from '../../activities/pki/nonce';
import { issueCertificate, publicKeyFingerprint } from '../../activities/pki/x509';
import { WriteConflictError } from '../../activities/s3/objects';
import { latestRunStatus } from '../../activities/temporal/workflow-status';
import type { ClusterPki } from '../../activities/pki/cluster-ca';
import type { AgentApiContext, ShardView } from './context';
import type { LeaderFence } from './fence';
import { HttpError, optionalString, requiredString } from './http';

export interface RegisterResponse {
  instanceId: string;
  certificate: string;
  caCertificate: string;
  serialNumber: string;
  notAfter: string;
  healthCheckIntervalMs: number;
}

export const CLIENT_CERT_VALIDITY_DAYS = 90;

export function nonceKey(shard: string, jti: string): string {
  return `shard/${shard}/nonce/${jti}.json`;
}

/** The SAN URI carried by agent certificates: lets mTLS handlers know the tenant/group without a lookup. */
export function agentUri(c: { cluster: string; shard: string; tenant: string; group: string; instanceId: string }): string {
  return `nstance://${c.cluster}/${c.shard}/${c.tenant}/${c.group}/${c.instanceId}`;
}

function parsePublicKey(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch {
    throw new HttpError(400, 'bad-public-key', '"publicKey" is not a PEM SubjectPublicKeyInfo');
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new HttpError(400, 'bad-public-key', `"publicKey" must be Ed25519, got ${key.asymmetricKeyType}`);
  return key;
}

const NONCE_STATUS: Record<NonceError['code'], number> = {
  malformed: 400,
  'bad-signature': 401,
  expired: 401,
  'not-yet-valid': 401,
  'wrong-cluster': 403,
  'wrong-shard': 403,
  replayed: 409,
};

interface RegisterRequest {
  nonce: string;
  publicKey: KeyObject;
  ip?: string;
  hostname?: string;
}

function parseRegisterRequest(body: Record<string, unknown>): RegisterRequest {
  return {
    nonce: requiredString(body, 'nonce'),
    publicKey: parsePublicKey(requiredString(body, 'publicKey')),
    ip: optionalString(body, 'ip', 64),
    hostname: optionalString(body, 'hostname'),
  };
}

/**
 * `readBody` is called inside the audited part, so a request that is not even
 * well-formed (bad JSON, no nonce, a bad key) is audited like any other rejection.
 * `fence` is checked before each write: a worker deposed mid-request stops there.
 */
export async function register(ctx: AgentApiContext, fence: LeaderFence, readBody: () => Promise<Record<string, unknown>>, remote: string): Promise<RegisterResponse> {
  let request: RegisterRequest | undefined;
  let claims: NonceClaims | undefined;
  let spent: SpentNonce | undefined;
  const { view, pki } = await ctx.pki();
  try {
    request = parseRegisterRequest(await readBody());
    claims = verifyNonce(request.nonce, pki.registrationPublicKey, { cluster: view.clusterId, shard: ctx.shard }, ctx.deps.now());
    await ensureInstanceLive(ctx, claims);
    spent = await spendNonce(ctx, fence, claims, request.publicKey);
  } catch (err) {
    const rejection =
      err instanceof NonceError ? new HttpError(NONCE_STATUS[err.code], `nonce-${err.code}`, err.message) : err instanceof HttpError ? err : undefined;
    if (!rejection) throw err;
    await ctx.audit('agent.register.rejected', {
      instanceIds: claims ? [claims.sub] : undefined,
      tenant: claims?.tenant,
      group: claims?.group,
      // The nonce itself is a bearer credential: audit its id only.
      details: { reason: rejection.code, message: rejection.message, remote, nonceId: claims?.jti, reportedIp: request?.ip, hostname: request?.hostname },
    });
    throw rejection;
  }
  // The same agent asking again (its first answer was lost) gets the certificate already
  // issued for this nonce, not a second one.
  const issued = spent.issued ?? (await issue(ctx, fence, { view, pki, request, claims, spent }));
  const details = spent.issued ? { repeatOfSpentNonce: true } : { certlog: issued.certlog, ...(spent.retry ? { retryOfSpentNonce: true } : {}) };
  return complete(ctx, fence, { view, pki, request, claims, issued, remote, details });
}

/** The nonce is spent: sign, log, keep the certificate with the nonce; each step only while still leading at the request's epoch. */
async function issue(
  ctx: AgentApiContext,
  fence: LeaderFence,
  r: { view: ShardView; pki: ClusterPki; request: RegisterRequest; claims: NonceClaims; spent: SpentNonce },
): Promise<IssuedRecord> {
  const { view, pki, claims, spent } = r;
  const { publicKey, ip, hostname } = r.request;
  const now = ctx.deps.now();
  fence.check();
  const issued = await issueCertificate({
    caCertPem: pki.caCertPem,
    caKey: pki.caKey,
    publicKey,
    commonName: claims.sub,
    organization: view.clusterId,
    organizationalUnit: ctx.shard,
    usage: 'client',
    uris: [agentUri({ cluster: view.clusterId, shard: ctx.shard, tenant: claims.tenant, group: claims.group, instanceId: claims.sub })],
    validityDays: CLIENT_CERT_VALIDITY_DAYS,
    now,
  });
  const issuedAt = new Date(now).toISOString();
  fence.check();
  const certlog = await writeCertLog(ctx.objects, {
    kind: 'agent-client',
    cluster: view.clusterId,
    shard: ctx.shard,
    tenant: claims.tenant,
    group: claims.group,
    id: claims.sub,
    serialNumber: issued.serialNumber,
    subject: `CN=${claims.sub}, OU=${ctx.shard}, O=${view.clusterId}`,
    notBefore: issued.notBefore,
    notAfter: issued.notAfter,
    publicKeySha256: publicKeyFingerprint(publicKey),
    issuedAt,
    nonceId: claims.jti,
    reportedIp: ip,
    hostname,
    issuer: `agent-api:${ctx.deps.workerId}`,
    leaderEpoch: fence.epoch,
  });
  const record: IssuedRecord = { certificate: issued.pem, serialNumber: issued.serialNumber, notAfter: issued.notAfter, issuedAt, certlog };
  fence.check();
  await recordIssued(ctx, spent, record);
  return record;
}

/**
 * Audit, health tracking, and the workflow told (again, for a repeat: in case the first
 * signal never landed; it keeps the first registration it hears of); then the answer.
 */
async function complete(
  ctx: AgentApiContext,
  fence: LeaderFence,
  r: { view: ShardView; pki: ClusterPki; request: RegisterRequest; claims: NonceClaims; issued: IssuedRecord; remote: string; details: Record<string, unknown> },
): Promise<RegisterResponse> {
  const { view, pki, claims, issued, remote } = r;
  const { ip, hostname } = r.request;
  fence.check();
  await ctx.audit('agent.register', {
    tenant: claims.tenant,
    group: claims.group,
    instanceIds: [claims.sub],
    workflowId: instanceWorkflowId(ctx.shard, claims.sub),
    details: { serialNumber: issued.serialNumber, nonceId: claims.jti, reportedIp: ip, hostname, remote, leaderEpoch: fence.epoch, ...r.details },
  });
  fence.check();
  ctx.tracker.registered(claims.sub);
  await signalRegistered(ctx, fence, { instanceId: claims.sub, certificateSerial: issued.serialNumber, reportedIp: ip, hostname, at: issued.issuedAt, leaderEpoch: fence.epoch });
  return {
    instanceId: claims.sub,
    certificate: issued.certificate,
    caCertificate: pki.caCertPem,
    serialNumber: issued.serialNumber,
    notAfter: issued.notAfter,
    healthCheckIntervalMs: view.healthCheckIntervalMs,
  };
}

/** A nonce whose instance workflow is gone (replaced, terminated) must not get a certificate. */
async function ensureInstanceLive(ctx: AgentApiContext, claims: NonceClaims): Promise<void> {
  const id = instanceWorkflowId(ctx.shard, claims.sub);
  const status = await latestRunStatus(ctx.deps.client, id);
  if (status === 'NOT_FOUND') throw new HttpError(404, 'unknown-instance', `no workflow ${id}: this shard did not launch instance ${claims.sub}`);
  if (status !== 'RUNNING') {
    throw new HttpError(409, 'instance-not-running', `instance ${claims.sub}'s workflow ${id} is ${status}: it is no longer expecting an agent`);
  }
}

/** The certificate issued for a spent nonce, stored in its record. */
interface IssuedRecord {
  certificate: string;
  serialNumber: string;
  notAfter: string;
  issuedAt: string;
  /** Its certificate-log object. */
  certlog: string;
}

interface NonceRecord {
  instanceId: string;
  spentAt: string;
  publicKeySha256: string;
  by: string;
  leaderEpoch?: number;
  issued?: IssuedRecord;
}

interface SpentNonce {
  key: string;
  record: NonceRecord;
  etag: string;
  /** The same key asked before: an earlier request spent it. */
  retry: boolean;
  /** What that earlier request issued, when it got that far. */
  issued?: IssuedRecord;
}

/**
 * Spends the nonce (create-only object: one winner across all workers). The same
 * agent retrying with the same public key after a lost response is let through:
 * it gets the certificate already issued (kept in the nonce record), or, if the
 * first request stopped before issuing one, the certificate it never got. Any
 * other key is refused: registration nonces are single-use.
 */
async function spendNonce(ctx: AgentApiContext, fence: LeaderFence, claims: NonceClaims, publicKey: KeyObject): Promise<SpentNonce> {
  const fingerprint = publicKeyFingerprint(publicKey);
  const record: NonceRecord = { instanceId: claims.sub, spentAt: new Date(ctx.deps.now()).toISOString(), publicKeySha256: fingerprint, by: ctx.deps.workerId, leaderEpoch: fence.epoch };
  const key = nonceKey(ctx.shard, claims.jti);
  fence.check();
  try {
    const etag = await ctx.objects.write(key, `${JSON.stringify(record)}\n`, { absent: true });
    return { key, record, etag, retry: false };
  } catch (err) {
    if (!(err instanceof WriteConflictError)) throw err;
  }
  const spent = await ctx.objects.read(key);
  const previous = spent ? (JSON.parse(spent.text) as NonceRecord) : undefined;
  if (spent && previous?.publicKeySha256 === fingerprint) return { key, record: previous, etag: spent.etag, retry: true, issued: previous.issued };
  throw new NonceError('replayed', `nonce ${claims.jti} for instance ${claims.sub} was already used${previous?.spentAt ? ` at ${previous.spentAt}` : ''}: registration nonces are single-use`);
}

/**
 * Adds the issued certificate to the nonce record (If-Match on the record as spent).
 * Losing that race means a concurrent retry recorded its own certificate first; both
 * are valid for the same key, and the next retry gets the recorded one.
 */
async function recordIssued(ctx: AgentApiContext, spent: SpentNonce, issued: IssuedRecord): Promise<void> {
  try {
    await ctx.objects.write(spent.key, `${JSON.stringify({ ...spent.record, issued })}\n`, { etag: spent.etag });
  } catch (err) {
    if (!(err instanceof WriteConflictError)) throw err;
  }
}

async function signalRegistered(ctx: AgentApiContext, fence: LeaderFence, registration: AgentRegistration): Promise<void> {
  const handle = ctx.deps.client.workflow.getHandle(instanceWorkflowId(ctx.shard, registration.instanceId));
  for (let attempt = 1; ; attempt++) {
    // Checked before every attempt: a retry must not outlive this worker's leadership.
    fence.check();
    try {
      await handle.signal(agentRegisteredSignal, registration);
      return;
    } catch (err) {
      // The certificate is issued: the workflow must hear of it, so retry transient failures a few times.
      if (err instanceof WorkflowNotFoundError || attempt >= 4) throw err;
      await new Promise((r) => setTimeout(r, 250 * attempt));
    }
  }
}
