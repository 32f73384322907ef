/**
 * POST /v1/register: nonce + the agent's Ed25519 public key → a client
 * certificate (CN = instance id) signed by the cluster CA. Order matters: every
 * check that only reads comes first; the certificate is then signed in memory and
 * the nonce spent with it inside one create-only S3 object (so a replay fails on any
 * worker, and an agent asking again gets that very certificate); only then is it
 * logged, audited and the instance workflow signalled (side by side). Three S3
 * writes per registration, no read. Every side effect re-checks the leadership the
 * request started under (LeaderFence) and carries its epoch.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { WorkflowNotFoundError } from '@temporalio/client';
import { instanceWorkflowId } from '../../common/names';
import { agentRegisteredSignal, type AgentRegistration } from '../../workflows/definitions';
import { writeCertLog, type CertLogEntry } from '../../adapters/pki/certlog';
import { NonceError, verifyNonce, type NonceClaims } from '../../adapters/pki/nonce';
import { WriteConflictError } from '../../adapters/s3/objects';
import { latestRunStatus } from '../../adapters/temporal/workflow-status';
import type { ClusterPki } from '../../adapters/pki/cluster-ca';
import type { AgentApiContext, ShardView } from './context';
import type { LeaderFence } from './fence';
import { signAgentCertificate, type IssuedRecord } from './agent-certificate';
import { HttpError, optionalString, requiredString } from './http';

export { agentUri, CLIENT_CERT_VALIDITY_DAYS } from './agent-certificate';

export interface RegisterResponse {
  instanceId: string;
  certificate: string;
  caCertificate: string;
  serialNumber: string;
  notAfter: string;
  healthCheckIntervalMs: number;
}

export function nonceKey(shard: string, jti: string): string {
  return `shard/${shard}/nonce/${jti}.json`;
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
 * well-formed (bad JSON, no nonce, a bad key) is counted like any other rejection.
 * `fence` is checked before each side effect: a worker deposed mid-request stops there.
 */
export async function register(ctx: AgentApiContext, fence: LeaderFence, readBody: () => Promise<Record<string, unknown>>, remote: string): Promise<RegisterResponse> {
  let request: RegisterRequest | undefined;
  let claims: NonceClaims | undefined;
  let spent: SpentNonce;
  const { view, pki } = await ctx.pki();
  try {
    request = parseRegisterRequest(await readBody());
    claims = verifyNonce(request.nonce, pki.registrationPublicKey, { cluster: view.clusterId, shard: ctx.shard }, ctx.deps.now());
    await ensureInstanceLive(ctx, fence, claims);
    spent = await spendNonce(ctx, fence, { view, pki, request, claims });
  } catch (err) {
    const rejection =
      err instanceof NonceError ? new HttpError(NONCE_STATUS[err.code], `nonce-${err.code}`, err.message) : err instanceof HttpError ? err : undefined;
    if (!rejection) throw err;
    ctx.reject({
      action: 'agent.register.rejected',
      reason: rejection.code,
      remote,
      instanceIds: claims ? [claims.sub] : undefined,
      tenant: claims?.tenant,
      group: claims?.group,
      // The nonce itself is a bearer credential: audit its id only.
      details: { message: rejection.message, nonceId: claims?.jti, reportedIp: request?.ip, hostname: request?.hostname },
    });
    throw rejection;
  }
  return complete(ctx, fence, { view, pki, request, claims, spent, remote });
}

interface NonceRecord {
  instanceId: string;
  spentAt: string;
  publicKeySha256: string;
  by: string;
  leaderEpoch?: number;
  /** Absent only in records written before the certificate was issued first (older workers). */
  issued?: IssuedRecord;
  /** The certificate-log entry, so a repeat can write it should the first request have stopped before it did. */
  certlogEntry?: CertLogEntry;
}

interface SpentNonce {
  issued: IssuedRecord;
  /** What to put in the certificate log (create-only: a repeat writes nothing new); absent for old records. */
  certlogEntry?: CertLogEntry;
  /** How this request relates to the nonce's first use, for the audit entry. */
  kind: 'first' | 'repeat' | 'retry-of-old-record';
  /** An old record (spent, no certificate) to complete with If-Match. */
  oldRecord?: { key: string; etag: string; record: NonceRecord };
}

type Registration = { view: ShardView; pki: ClusterPki; request: RegisterRequest; claims: NonceClaims };

/**
 * Spends the nonce with a freshly signed certificate in one create-only object (one winner
 * across all workers). The same agent asking again with the same public key after a lost
 * response gets the certificate recorded there, not a second one (the one signed for the
 * repeat is dropped unseen). Any other key is refused: registration nonces are single-use.
 */
async function spendNonce(ctx: AgentApiContext, fence: LeaderFence, r: Registration): Promise<SpentNonce> {
  const { claims } = r;
  fence.check();
  const signed = signAgentCertificate(ctx, fence, { view: r.view, pki: r.pki, claims, ...r.request });
  const fingerprint = signed.certlogEntry.publicKeySha256;
  const record: NonceRecord = {
    instanceId: claims.sub,
    spentAt: signed.issued.issuedAt,
    publicKeySha256: fingerprint,
    by: ctx.deps.workerId,
    leaderEpoch: fence.epoch,
    issued: signed.issued,
    certlogEntry: signed.certlogEntry,
  };
  const key = nonceKey(ctx.shard, claims.jti);
  fence.check();
  try {
    await ctx.objects.write(key, `${JSON.stringify(record)}\n`, { absent: true }, { signal: fence.signal });
    return { ...signed, kind: 'first' };
  } catch (err) {
    if (!(err instanceof WriteConflictError)) throw err;
  }
  const stored = await ctx.objects.read(key, { signal: fence.signal });
  const previous = stored ? (JSON.parse(stored.text) as NonceRecord) : undefined;
  if (!stored || previous?.publicKeySha256 !== fingerprint) {
    throw new NonceError('replayed', `nonce ${claims.jti} for instance ${claims.sub} was already used${previous?.spentAt ? ` at ${previous.spentAt}` : ''}: registration nonces are single-use`);
  }
  if (previous.issued) return { issued: previous.issued, certlogEntry: previous.certlogEntry, kind: 'repeat' };
  // Spent by an older worker that stopped before issuing: this request's certificate completes it.
  return { ...signed, kind: 'retry-of-old-record', oldRecord: { key, etag: stored.etag, record: previous } };
}

/**
 * Certificate log, audit and the workflow told (side by side; again,
 * for a repeat: in case the first signal never landed; it keeps the first registration it
 * hears of); then the answer.
 */
async function complete(ctx: AgentApiContext, fence: LeaderFence, r: Registration & { spent: SpentNonce; remote: string }): Promise<RegisterResponse> {
  const { view, pki, claims, spent, remote } = r;
  const { ip, hostname } = r.request;
  const { issued } = spent;
  const details =
    spent.kind === 'repeat' ? { repeatOfSpentNonce: true } : { certlog: issued.certlog, ...(spent.kind === 'retry-of-old-record' ? { retryOfSpentNonce: true } : {}) };
  fence.check();
  const logged = spent.certlogEntry ? logCertificate(ctx, spent.certlogEntry, fence.signal) : Promise.resolve();
  fence.check();
  const audited = ctx.audit('agent.register', {
    tenant: claims.tenant,
    group: claims.group,
    instanceIds: [claims.sub],
    workflowId: instanceWorkflowId(ctx.shard, claims.sub),
    details: { serialNumber: issued.serialNumber, nonceId: claims.jti, reportedIp: ip, hostname, remote, leaderEpoch: fence.epoch, ...details },
  }, fence.signal);
  fence.check();
  ctx.tracker.registered(claims.sub);
  // The workflow is told alongside: the agent gets its certificate only once all three are done, so a
  // failure of any makes it ask again (a repeat), which writes what is missing and signals again.
  const signalled = signalRegistered(ctx, fence, { instanceId: claims.sub, certificateSerial: issued.serialNumber, reportedIp: ip, hostname, at: issued.issuedAt, leaderEpoch: fence.epoch });
  await Promise.all([logged, audited, signalled]);
  if (spent.oldRecord) await completeOldRecord(ctx, fence, spent.oldRecord, issued);
  return {
    instanceId: claims.sub,
    certificate: issued.certificate,
    caCertificate: pki.caCertPem,
    serialNumber: issued.serialNumber,
    notAfter: issued.notAfter,
    healthCheckIntervalMs: view.healthCheckIntervalMs,
  };
}

/** Create-only; for a repeat the entry is usually there already, which is fine. */
async function logCertificate(ctx: AgentApiContext, entry: CertLogEntry, signal: AbortSignal): Promise<void> {
  try {
    await writeCertLog(ctx.objects, entry, { signal });
  } catch (err) {
    if (!(err instanceof WriteConflictError)) throw err;
  }
}

/**
 * Adds the certificate to a record an older worker spent without one (If-Match on it).
 * Losing that race means a concurrent retry recorded its own certificate first; both are
 * valid for the same key, and the next retry gets the recorded one.
 */
async function completeOldRecord(ctx: AgentApiContext, fence: LeaderFence, old: NonNullable<SpentNonce['oldRecord']>, issued: IssuedRecord): Promise<void> {
  fence.check();
  try {
    await ctx.objects.write(old.key, `${JSON.stringify({ ...old.record, issued })}\n`, { etag: old.etag }, { signal: fence.signal });
  } catch (err) {
    if (!(err instanceof WriteConflictError)) throw err;
  }
}

/**
 * A nonce whose instance workflow is gone (replaced, terminated) must not get a certificate. One whose
 * workflow does not exist yet was launched by a group's start batch that has not started it yet (a valid
 * nonce is only ever issued for a launch): worth retrying in a moment, and the nonce is not spent.
 */
async function ensureInstanceLive(ctx: AgentApiContext, fence: LeaderFence, claims: NonceClaims): Promise<void> {
  const id = instanceWorkflowId(ctx.shard, claims.sub);
  const status = await ctx.deps.client.withAbortSignal(fence.signal, () => latestRunStatus(ctx.deps.client, id));
  if (status === 'NOT_FOUND') throw new HttpError(503, 'instance-starting', `no workflow ${id} yet: instance ${claims.sub} was just launched and its workflow is starting; retry`);
  if (status !== 'RUNNING') {
    throw new HttpError(409, 'instance-not-running', `instance ${claims.sub}'s workflow ${id} is ${status}: it is no longer expecting an agent`);
  }
}

async function signalRegistered(ctx: AgentApiContext, fence: LeaderFence, registration: AgentRegistration): Promise<void> {
  const handle = ctx.deps.client.workflow.getHandle(instanceWorkflowId(ctx.shard, registration.instanceId));
  for (let attempt = 1; ; attempt++) {
    // Checked before every attempt: a retry must not outlive this worker's leadership.
    fence.check();
    try {
      await ctx.deps.client.withAbortSignal(fence.signal, () => handle.signal(agentRegisteredSignal, registration));
      return;
    } catch (err) {
      // The certificate is issued: the workflow must hear of it, so retry transient failures a few times.
      if (err instanceof WorkflowNotFoundError || attempt >= 4 || fence.signal.aborted) throw err;
      await new Promise((r) => setTimeout(r, 250 * attempt));
    }
  }
}
