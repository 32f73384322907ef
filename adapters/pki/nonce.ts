/**
 * Registration nonces: a single-use JWT that names exactly one instance, put in
 * its userdata at launch. Minting and claim checks are pure so they are unit-tested
 * without AWS; single use is enforced by the agent API (a create-only S3 object).
 */
import { createHash, randomUUID, type KeyObject } from 'node:crypto';
import { JwsError, signJws, verifyJws } from './jws';

export const NONCE_ISSUER = 'nstance';
export const NONCE_AUDIENCE = 'nstance-agent-api';

export interface NonceClaims {
  iss: typeof NONCE_ISSUER;
  aud: typeof NONCE_AUDIENCE;
  cluster: string;
  shard: string;
  tenant: string;
  group: string;
  /** The Nstance instance id (not the EC2 id, which is unknown before launch). */
  sub: string;
  jti: string;
  /** Seconds since the epoch, as JWT has it. */
  iat: number;
  exp: number;
  /**
   * SHA-256 of the cluster CA certificate (DER, hex). Not a secret: it lets an
   * agent whose userdata carries only the nonce pin the CA the agent API presents
   * (as kubeadm's discovery-token-ca-cert-hash does).
   */
  cafp?: string;
}

export interface NonceSubject {
  cluster: string;
  shard: string;
  tenant: string;
  group: string;
  instanceId: string;
  /** See NonceClaims.cafp. */
  caFingerprint?: string;
}

export type NonceRejection =
  | 'malformed'
  | 'bad-signature'
  | 'expired'
  | 'not-yet-valid'
  | 'wrong-cluster'
  | 'wrong-shard'
  | 'replayed';

export class NonceError extends Error {
  constructor(
    readonly code: NonceRejection,
    message: string,
  ) {
    super(message);
    this.name = 'NonceError';
  }
}

/** How much clock difference between workers we tolerate on `iat`. */
const CLOCK_SKEW_S = 60;

/**
 * Mints a nonce. `jti` defaults to a random id; a launch passes launchNonceId() instead
 * (see mintLaunchNonce), so that every retry of it signs the same claims.
 */
export function mintNonce(
  key: KeyObject,
  subject: NonceSubject,
  ttlMs: number,
  now = Date.now(),
  kid?: string,
  jti: string = randomUUID(),
): { token: string; claims: NonceClaims } {
  const iat = Math.floor(now / 1000);
  const claims: NonceClaims = {
    iss: NONCE_ISSUER,
    aud: NONCE_AUDIENCE,
    cluster: subject.cluster,
    shard: subject.shard,
    tenant: subject.tenant,
    group: subject.group,
    sub: subject.instanceId,
    jti,
    iat,
    exp: iat + Math.max(1, Math.ceil(ttlMs / 1000)),
    ...(subject.caFingerprint ? { cafp: subject.caFingerprint } : {}),
  };
  return { token: signJws(claims, key, kid), claims };
}

/**
 * The jti of the nonce an instance workflow puts in its userdata: a UUID (version 8,
 * "custom", RFC 9562) built from SHA-256 of the workflow id. Deterministic so that
 * every attempt of one launch renders the same UserData; unique per instance because
 * the workflow id is (it names the instance), so single use still holds.
 */
export function launchNonceId(workflowId: string): string {
  const b = createHash('sha256').update(`nstance registration nonce\0${workflowId}`).digest().subarray(0, 16);
  b[6] = (b[6] & 0x0f) | 0x80;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = b.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export interface LaunchNonceOptions {
  /** The instance workflow's id: the jti is derived from it. */
  workflowId: string;
  /** When the launch was first scheduled: fixed across its retries, so `iat` and `exp` are too. */
  issuedAtMs: number;
  ttlMs: number;
  kid?: string;
}

/**
 * The nonce of one launch. Every input is fixed across the launch's retries and Ed25519
 * signatures are deterministic, so each attempt gets the very same token: a retried
 * RunInstances then carries the same parameters as the first one, which its ClientToken
 * requires (otherwise EC2 answers IdempotentParameterMismatch).
 */
export function mintLaunchNonce(key: KeyObject, subject: NonceSubject, options: LaunchNonceOptions): { token: string; claims: NonceClaims } {
  return mintNonce(key, subject, options.ttlMs, options.issuedAtMs, options.kid, launchNonceId(options.workflowId));
}

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Shape check: every claim present, of the right type, and safe to use in an S3 key. */
export function parseClaims(payload: unknown): NonceClaims {
  const p = (payload ?? {}) as Record<string, unknown>;
  const bad = (what: string) => new NonceError('malformed', `nonce claim "${what}" is missing or invalid`);
  if (p.iss !== NONCE_ISSUER) throw bad('iss');
  if (p.aud !== NONCE_AUDIENCE) throw bad('aud');
  for (const name of ['cluster', 'shard', 'tenant', 'group', 'sub', 'jti'] as const) {
    if (typeof p[name] !== 'string' || !ID.test(p[name] as string)) throw bad(name);
  }
  if (p.cafp !== undefined && (typeof p.cafp !== 'string' || !/^[0-9a-f]{64}$/.test(p.cafp))) throw bad('cafp');
  for (const name of ['iat', 'exp'] as const) {
    if (typeof p[name] !== 'number' || !Number.isFinite(p[name])) throw bad(name);
  }
  return p as unknown as NonceClaims;
}

/** Checks what a nonce claims against who is asking; throws NonceError with a clear reason. */
export function validateClaims(claims: NonceClaims, expected: { cluster: string; shard: string }, now = Date.now()): void {
  const nowS = Math.floor(now / 1000);
  if (claims.cluster !== expected.cluster) {
    throw new NonceError('wrong-cluster', `nonce is for cluster "${claims.cluster}", this is cluster "${expected.cluster}"`);
  }
  if (claims.shard !== expected.shard) {
    throw new NonceError('wrong-shard', `nonce is for shard "${claims.shard}", this agent API serves shard "${expected.shard}"`);
  }
  if (claims.exp <= nowS) {
    throw new NonceError('expired', `nonce for instance ${claims.sub} expired at ${new Date(claims.exp * 1000).toISOString()} (registration timeout passed)`);
  }
  if (claims.iat > nowS + CLOCK_SKEW_S) {
    throw new NonceError('not-yet-valid', `nonce for instance ${claims.sub} was issued in the future (${new Date(claims.iat * 1000).toISOString()})`);
  }
}

/** Signature, shape and claims, in that order; the single-use check comes after (it writes). */
export function verifyNonce(token: string, key: KeyObject, expected: { cluster: string; shard: string }, now = Date.now()): NonceClaims {
  let payload: unknown;
  try {
    payload = verifyJws(token, key).payload;
  } catch (err) {
    if (err instanceof JwsError) throw new NonceError(err.code, `nonce rejected: ${err.message}`);
    throw err;
  }
  const claims = parseClaims(payload);
  validateClaims(claims, expected, now);
  return claims;
}

/**
 * The claims of a nonce without checking its signature: for the agent, which
 * cannot (it has no registration key) and only reads the CA pin from it. The
 * agent API always verifies.
 */
export function peekClaims(token: string): Partial<NonceClaims> | undefined {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as unknown;
    return payload && typeof payload === 'object' ? (payload as Partial<NonceClaims>) : undefined;
  } catch {
    return undefined;
  }
}
