/**
 * Compact JWS (RFC 7515) signed with EdDSA/Ed25519 (RFC 8037), using node:crypto
 * only. Deliberately tiny: one algorithm, no JWK handling, no "none", so there is
 * no algorithm-confusion surface.
 */
import { sign, verify, type KeyObject } from 'node:crypto';

export interface JwsHeader {
  alg: 'EdDSA';
  typ: 'JWT';
  /** Identifies the signing key, so a rotated key can be told apart. */
  kid?: string;
}

export class JwsError extends Error {
  constructor(
    readonly code: 'malformed' | 'bad-signature',
    message: string,
  ) {
    super(message);
    this.name = 'JwsError';
  }
}

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

function decodeJson(part: string, what: string): unknown {
  if (!/^[A-Za-z0-9_-]*$/.test(part)) throw new JwsError('malformed', `${what} is not base64url`);
  try {
    return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    throw new JwsError('malformed', `${what} is not JSON`);
  }
}

export function signJws(payload: object, privateKey: KeyObject, kid?: string): string {
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error('signJws needs an Ed25519 private key');
  const header: JwsHeader = { alg: 'EdDSA', typ: 'JWT', ...(kid ? { kid } : {}) };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  // Ed25519 hashes internally: the digest argument must be null.
  const signature = sign(null, Buffer.from(input), privateKey);
  return `${input}.${b64url(signature)}`;
}

/** Verifies the signature and returns the payload; throws JwsError on anything else. */
export function verifyJws(token: string, publicKey: KeyObject): { header: JwsHeader; payload: unknown } {
  if (typeof token !== 'string' || token.length > 8192) throw new JwsError('malformed', 'token is not a compact JWS');
  const parts = token.split('.');
  if (parts.length !== 3) throw new JwsError('malformed', 'token is not a compact JWS (expected 3 dot-separated parts)');
  const header = decodeJson(parts[0], 'JWS header') as Partial<JwsHeader> | null;
  if (!header || typeof header !== 'object' || header.alg !== 'EdDSA') {
    throw new JwsError('malformed', `JWS algorithm must be EdDSA, got ${JSON.stringify(header?.alg)}`);
  }
  if (!/^[A-Za-z0-9_-]+$/.test(parts[2])) throw new JwsError('malformed', 'JWS signature is not base64url');
  const ok = verify(null, Buffer.from(`${parts[0]}.${parts[1]}`), publicKey, Buffer.from(parts[2], 'base64url'));
  if (!ok) throw new JwsError('bad-signature', 'signature does not verify against the cluster registration key');
  return { header: header as JwsHeader, payload: decodeJson(parts[1], 'JWS payload') };
}
