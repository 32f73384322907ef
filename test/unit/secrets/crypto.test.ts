/** Object-storage encryption (Nstance's format), key loading and the read cache, without AWS. */
import { createCipheriv, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { CachedSecretStore } from '../../../adapters/secrets/cached';
import { decryptSecret, encryptSecret, KeyRing } from '../../../adapters/secrets/crypto';
import { loadKeyRing } from '../../../adapters/secrets/keys';
import type { SecretStore } from '../../../adapters/secrets/store';
import type { SecretsConfig } from '../../../common/config/secrets';

const noClients = { secrets: {} as SecretsManagerClient, ssm: {} as SSMClient };

describe('AES-256-GCM, 12-byte nonce ‖ ciphertext ‖ tag', () => {
  test('round trip; a fresh nonce each time; 28 bytes of overhead', () => {
    const key = randomBytes(32);
    const a = encryptSecret(Buffer.from('s3cret'), key);
    const b = encryptSecret(Buffer.from('s3cret'), key);
    expect(a.length).toBe(6 + 12 + 16);
    expect(a.equals(b)).toBe(false);
    expect(decryptSecret(a, key)?.toString()).toBe('s3cret');
  });

  test('reads what any AES-256-GCM writer of the same layout wrote (Nstance interoperability)', () => {
    const key = randomBytes(32);
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, nonce);
    const blob = Buffer.concat([nonce, cipher.update('from nstance'), cipher.final(), cipher.getAuthTag()]);
    expect(decryptSecret(blob, key)?.toString()).toBe('from nstance');
  });

  test('a wrong key or a flipped bit decrypts to nothing, never to garbage', () => {
    const key = randomBytes(32);
    const blob = encryptSecret(Buffer.from('s3cret'), key);
    expect(decryptSecret(blob, randomBytes(32))).toBeUndefined();
    blob[14] ^= 1;
    expect(decryptSecret(blob, key)).toBeUndefined();
    expect(decryptSecret(Buffer.alloc(10), key)).toBeUndefined();
  });

  test('a key ring encrypts with the current key only and decrypts with any, saying which', () => {
    const [oldKey, newKey] = [randomBytes(32), randomBytes(32)];
    const ring = new KeyRing(newKey, [oldKey]);
    expect(ring.decrypt(encryptSecret(Buffer.from('x'), oldKey))).toMatchObject({ by: 'old', keyId: new KeyRing(oldKey).currentId });
    const fresh = ring.encrypt(Buffer.from('y'));
    expect(decryptSecret(fresh, oldKey)).toBeUndefined();
    expect(ring.decrypt(fresh)).toMatchObject({ by: 'current', keyId: ring.currentId });
    expect(ring.decrypt(encryptSecret(Buffer.from('z'), randomBytes(32)))).toBeUndefined();
  });
});

describe('encryption keys: exactly 32 bytes, else an error naming the field', () => {
  const config = (current: SecretsConfig['encryption_key'], old: SecretsConfig['old_encryption_keys'] = []): SecretsConfig => ({
    provider: 'object-storage',
    encryption_key: current,
    old_encryption_keys: old,
  });

  test('from env: raw 32 bytes or base64 of 32 bytes', async () => {
    const raw = 'k'.repeat(32);
    const b64 = randomBytes(32).toString('base64');
    const ring = await loadKeyRing(config({ provider: 'env', source: 'K' }, [{ provider: 'env', source: 'OLD' }]), noClients, { K: raw, OLD: b64 });
    expect(ring.currentId).toBe(new KeyRing(Buffer.from(raw)).currentId);
    expect(ring.oldIds).toEqual([new KeyRing(Buffer.from(b64, 'base64')).currentId]);
  });

  test('from a file, trimmed as Nstance does', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nstance-key-'));
    writeFileSync(join(dir, 'key'), `${'f'.repeat(32)}\n`);
    const ring = await loadKeyRing(config({ provider: 'file', source: join(dir, 'key') }), noClients, {});
    expect(ring.currentId).toBe(new KeyRing(Buffer.from('f'.repeat(32))).currentId);
    await expect(loadKeyRing(config({ provider: 'file', source: join(dir, 'nope') }), noClients, {})).rejects.toThrow(/^cluster\.secrets\.encryption_key: cannot read key file/);
  });

  test('from a file: a binary key with invalid UTF-8 bytes and a trailing newline keeps its 32 bytes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nstance-key-'));
    // 0xff, 0xc3 0x28 and a lone 0x80 are invalid UTF-8: a text round trip would replace them.
    const key = Buffer.concat([Buffer.from([0xff, 0xc3, 0x28, 0x80]), randomBytes(27), Buffer.from([0xfe])]);
    expect(key.length).toBe(32);
    writeFileSync(join(dir, 'key'), Buffer.concat([key, Buffer.from('\r\n')]));
    const ring = await loadKeyRing(config({ provider: 'file', source: join(dir, 'key') }), noClients, {});
    expect(ring.currentId).toBe(new KeyRing(key).currentId);
    writeFileSync(join(dir, 'short'), Buffer.concat([key.subarray(0, 30), Buffer.from('\n')]));
    await expect(loadKeyRing(config({ provider: 'file', source: join(dir, 'short') }), noClients, {})).rejects.toThrow(/holds 30 bytes/);
  });

  test('a short key, a long key, a missing variable: each names its field', async () => {
    await expect(loadKeyRing(config({ provider: 'env', source: 'K' }), noClients, { K: 'short' })).rejects.toThrow(
      'cluster.secrets.encryption_key: env "K" holds 5 bytes; an encryption key must be exactly 32 bytes',
    );
    await expect(loadKeyRing(config({ provider: 'env', source: 'K' }, [{ provider: 'env', source: 'OLD' }]), noClients, { K: 'k'.repeat(32), OLD: 'o'.repeat(33) })).rejects.toThrow(
      'cluster.secrets.old_encryption_keys[0]: env "OLD" holds 33 bytes',
    );
    await expect(loadKeyRing(config({ provider: 'env', source: 'UNSET' }), noClients, {})).rejects.toThrow('cluster.secrets.encryption_key: environment variable UNSET is not set');
  });
});

describe('cache_ttl', () => {
  class CountingStore implements SecretStore {
    readonly provider = 'aws-secrets-manager' as const;
    readonly prefix = 'p/';
    values = new Map<string, string>();
    gets = 0;
    locate = (name: string) => `p/${name}`;
    get = async (name: string) => (this.gets++, this.values.get(name));
    put = async (name: string, value: string) => void this.values.set(name, value);
    delete = async (name: string) => this.values.delete(name);
    list = async () => [...this.values.keys()].sort();
    createIfAbsent = async (name: string, make: () => string) => ({ value: this.values.get(name) ?? make(), created: false });
  }

  test('reads are answered from memory for the TTL, once for concurrent callers; own writes are seen at once', async () => {
    let now = 0;
    const inner = new CountingStore();
    inner.values.set('a', '1');
    const cached = new CachedSecretStore(inner, 60_000, () => now);
    expect(await Promise.all([cached.get('a'), cached.get('a'), cached.get('a')])).toEqual(['1', '1', '1']);
    expect(inner.gets).toBe(1);
    inner.values.set('a', 'changed elsewhere');
    now += 59_999;
    expect(await cached.get('a')).toBe('1');
    now += 1;
    expect(await cached.get('a')).toBe('changed elsewhere');
    await cached.put('a', 'mine');
    expect(await cached.get('a')).toBe('mine');
    await cached.delete('a');
    expect(await cached.get('a')).toBeUndefined();
    expect(inner.gets).toBe(4);
  });
});
