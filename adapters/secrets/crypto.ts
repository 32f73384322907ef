/**
 * Object-storage secret encryption, byte-compatible with Nstance: AES-256-GCM, a 12-byte random
 * nonce, stored as nonce ‖ ciphertext ‖ 16-byte tag. The blob names no key, so decryption tries
 * the current key first, then each old key; the tag makes a wrong key fail, never mis-decrypt.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

export const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/** `aad`: associated data bound to the blob (it must be given again to decrypt); Nstance's secrets use none. */
export function encryptSecret(plaintext: Buffer, key: Buffer, aad?: Buffer): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  if (aad) cipher.setAAD(aad);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([nonce, body, cipher.getAuthTag()]);
}

/** The plaintext, or undefined when `key` did not encrypt `blob` (or it is damaged). */
export function decryptSecret(blob: Buffer, key: Buffer, aad?: Buffer): Buffer | undefined {
  if (blob.length < NONCE_BYTES + TAG_BYTES) return undefined;
  const decipher = createDecipheriv('aes-256-gcm', key, blob.subarray(0, NONCE_BYTES));
  if (aad) decipher.setAAD(aad);
  decipher.setAuthTag(blob.subarray(blob.length - TAG_BYTES));
  try {
    return Buffer.concat([decipher.update(blob.subarray(NONCE_BYTES, blob.length - TAG_BYTES)), decipher.final()]);
  } catch {
    return undefined;
  }
}

/** A key's public name: a digest, safe for logs, audit entries and workflow history. */
export function keyId(key: Buffer): string {
  return createHash('sha256').update('nstance secrets key\0').update(key).digest('hex').slice(0, 16);
}

/** The current key (encrypts and decrypts) and the old ones (decrypt only). */
export class KeyRing {
  readonly currentId: string;
  readonly oldIds: string[];

  constructor(
    private readonly current: Buffer,
    private readonly old: Buffer[] = [],
  ) {
    for (const key of [current, ...old]) if (key.length !== KEY_BYTES) throw new Error(`an encryption key must be exactly ${KEY_BYTES} bytes, got ${key.length}`);
    this.currentId = keyId(current);
    this.oldIds = old.map(keyId);
  }

  encrypt(plaintext: Buffer): Buffer {
    return encryptSecret(plaintext, this.current);
  }

  /** Which key opened it: 'current', an old key's id, or undefined when none does. */
  decrypt(blob: Buffer): { plaintext: Buffer; by: 'current' | 'old'; keyId: string } | undefined {
    const plain = decryptSecret(blob, this.current);
    if (plain) return { plaintext: plain, by: 'current', keyId: this.currentId };
    for (let i = 0; i < this.old.length; i++) {
      const opened = decryptSecret(blob, this.old[i]);
      if (opened) return { plaintext: opened, by: 'old', keyId: this.oldIds[i] };
    }
    return undefined;
  }
}
