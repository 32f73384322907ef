import { generateKeyPairSync } from 'node:crypto';
import { signJws, verifyJws } from '../../activities/pki/jws';
import { mintNonce, NonceError, parseClaims, peekClaims, validateClaims, verifyNonce, type NonceClaims } from '../../activities/pki/nonce';

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
