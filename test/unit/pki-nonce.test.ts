import { generateKeyPairSync } from 'node:crypto';
import { signJws, verifyJws } from '../../adapters/pki/jws';
import { launchNonceId, mintLaunchNonce, mintNonce, NonceError, parseClaims, peekClaims, validateClaims, verifyNonce, type NonceClaims } from '../../adapters/pki/nonce';

const key = generateKeyPairSync('ed25519');
const other = generateKeyPairSync('ed25519');
const subject = { cluster: 'c1', shard: 's1', tenant: 'default', group: 'web', instanceId: 'web-0abc' };
const expected = { cluster: 'c1', shard: 's1' };
const NOW = Date.parse('2026-01-01T00:00:00Z');

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return err instanceof NonceError ? err.code : `other: ${(err as Error).message}`;
  }
  return 'accepted';
}

describe('registration nonce', () => {
  test('a freshly minted nonce verifies and names cluster, shard, tenant, group, instance, jti and exp', () => {
    const { token } = mintNonce(key.privateKey, subject, 5 * 60_000, NOW, 'kid1');
    const claims = verifyNonce(token, key.publicKey, expected, NOW + 1000);
    expect(claims).toMatchObject({ cluster: 'c1', shard: 's1', tenant: 'default', group: 'web', sub: 'web-0abc', iat: NOW / 1000, exp: NOW / 1000 + 300 });
    expect(claims.jti).toMatch(/^[0-9a-f-]{36}$/);
    expect(verifyJws(token, key.publicKey).header).toEqual({ alg: 'EdDSA', typ: 'JWT', kid: 'kid1' });
  });

  test('each nonce has its own jti', () => {
    const a = mintNonce(key.privateKey, subject, 60_000, NOW).claims.jti;
    const b = mintNonce(key.privateKey, subject, 60_000, NOW).claims.jti;
    expect(a).not.toBe(b);
  });

  test('expired, forged, tampered, other cluster and other shard are each rejected with their own reason', () => {
    const { token } = mintNonce(key.privateKey, subject, 60_000, NOW);
    expect(code(() => verifyNonce(token, key.publicKey, expected, NOW + 60_000))).toBe('expired');
    expect(code(() => verifyNonce(mintNonce(other.privateKey, subject, 60_000, NOW).token, key.publicKey, expected, NOW))).toBe('bad-signature');
    const [h, , s] = token.split('.');
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...parseClaims(verifyJws(token, key.publicKey).payload), sub: 'web-evil' })).toString('base64url')}.${s}`;
    expect(code(() => verifyNonce(tampered, key.publicKey, expected, NOW))).toBe('bad-signature');
    expect(code(() => verifyNonce(token, key.publicKey, { cluster: 'c2', shard: 's1' }, NOW))).toBe('wrong-cluster');
    expect(code(() => verifyNonce(token, key.publicKey, { cluster: 'c1', shard: 's2' }, NOW))).toBe('wrong-shard');
    expect(code(() => verifyNonce('not-a-token', key.publicKey, expected, NOW))).toBe('malformed');
  });

  test('"alg": "none" and other algorithms are refused before any verification', () => {
    const body = Buffer.from(JSON.stringify({})).toString('base64url');
    const none = `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${body}.`;
    expect(code(() => verifyNonce(none, key.publicKey, expected, NOW))).toBe('malformed');
  });

  test('claims validation is pure: it checks cluster, shard, expiry and issue time', () => {
    const base: NonceClaims = { iss: 'nstance', aud: 'nstance-agent-api', cluster: 'c1', shard: 's1', tenant: 't', group: 'g', sub: 'i', jti: 'j', iat: NOW / 1000, exp: NOW / 1000 + 10 };
    expect(code(() => validateClaims(base, expected, NOW))).toBe('accepted');
    expect(code(() => validateClaims({ ...base, exp: NOW / 1000 }, expected, NOW))).toBe('expired');
    expect(code(() => validateClaims({ ...base, iat: NOW / 1000 + 3600, exp: NOW / 1000 + 7200 }, expected, NOW))).toBe('not-yet-valid');
    expect(code(() => validateClaims(base, { cluster: 'c1', shard: 'x' }, NOW))).toBe('wrong-shard');
  });

  test('claims with a missing field or an id unsafe for an S3 key are malformed', () => {
    const good = mintNonce(key.privateKey, subject, 60_000, NOW).claims;
    expect(code(() => parseClaims({ ...good, jti: '../../config' }))).toBe('malformed');
    expect(code(() => parseClaims({ ...good, sub: undefined }))).toBe('malformed');
    expect(code(() => parseClaims({ ...good, exp: '1' }))).toBe('malformed');
    expect(code(() => parseClaims({ ...good, aud: 'other' }))).toBe('malformed');
  });

  test('a nonce can pin the CA (cafp); the agent reads it without the registration key', () => {
    const cafp = 'ab'.repeat(32);
    const { token } = mintNonce(key.privateKey, { ...subject, caFingerprint: cafp }, 60_000, NOW);
    expect(peekClaims(token)?.cafp).toBe(cafp);
    expect(verifyNonce(token, key.publicKey, expected, NOW).cafp).toBe(cafp);
    expect(code(() => parseClaims({ ...parseClaims(verifyJws(token, key.publicKey).payload), cafp: 'xyz' }))).toBe('malformed');
    expect(peekClaims('garbage')).toBeUndefined();
  });

  test('JWS helper refuses non-Ed25519 keys', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect(() => signJws({}, ec.privateKey)).toThrow(/Ed25519/);
  });
});

describe('the nonce of a launch (identical on every attempt)', () => {
  const launch = { workflowId: 'nstance:s1:instance:web-0abc', issuedAtMs: NOW + 1234, ttlMs: 5 * 60_000, kid: 'kid1' };

  test('the same launch gives the very same token, so retried UserData is identical', () => {
    const a = mintLaunchNonce(key.privateKey, subject, launch);
    const b = mintLaunchNonce(key.privateKey, subject, { ...launch });
    expect(b.token).toBe(a.token);
    expect(a.claims).toMatchObject({ sub: 'web-0abc', jti: launchNonceId(launch.workflowId), iat: Math.floor((NOW + 1234) / 1000) });
    expect(a.claims.exp - a.claims.iat).toBe(300);
    // Still a valid nonce, with the signing key's kid.
    expect(verifyNonce(a.token, key.publicKey, expected, NOW + 2000).jti).toBe(a.claims.jti);
    expect(verifyJws(a.token, key.publicKey).header.kid).toBe('kid1');
  });

  test('another instance workflow gets another jti; another launch time another iat', () => {
    const a = mintLaunchNonce(key.privateKey, subject, launch);
    const other = mintLaunchNonce(key.privateKey, subject, { ...launch, workflowId: 'nstance:s1:instance:web-0abd' });
    expect(other.claims.jti).not.toBe(a.claims.jti);
    const later = mintLaunchNonce(key.privateKey, subject, { ...launch, issuedAtMs: launch.issuedAtMs + 60_000 });
    expect(later.claims.jti).toBe(a.claims.jti);
    expect(later.claims.iat).toBe(a.claims.iat + 60);
    expect(later.token).not.toBe(a.token);
  });

  test('the jti is a version-8 UUID, safe as an S3 key and accepted by the claims check', () => {
    const jti = launchNonceId('nstance:s1:instance:web-0abc');
    expect(jti).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(launchNonceId('nstance:s1:instance:web-0abc')).toBe(jti);
    expect(code(() => parseClaims(mintLaunchNonce(key.privateKey, subject, launch).claims))).toBe('accepted');
  });
});
