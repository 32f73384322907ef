/**
 * The payload codec: every payload is compressed (when that saves bytes) and encrypted with
 * AES-256-GCM before it leaves the process, so Temporal's history holds no nonce, key or userdata
 * in plaintext. The encrypted payload names its key id and compression in metadata, which is also
 * the GCM additional data, so neither can be swapped without failing authentication.
 *
 * Payloads without the encrypted encoding (histories written before the codec) decode unchanged.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { ApplicationFailure, type Payload, type PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { PayloadKey, PayloadKeyRing } from './payload-keys';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
export const CIPHER_METADATA = 'encryption-cipher';
export const COMPRESSION_METADATA = 'nstance-compression';
const CIPHER = 'AES256GCM';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/**
 * Below this, deflate saves little and costs much (setting up its window is most of a small
 * payload's encode time: bench/codec.ts). Signals and health transitions stay under it.
 */
const COMPRESS_FROM_BYTES = 512;

type Compression = 'deflate' | 'none';

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

export class NstancePayloadCodec implements PayloadCodec {
  constructor(private readonly keys: PayloadKeyRing) {}

  get currentKeyId(): string {
    return this.keys.current.id;
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => this.encodeOne(payload));
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => this.decodeOne(payload));
  }

  encodeOne(payload: Payload): Payload {
    const plain = temporal.api.common.v1.Payload.encode(payload).finish();
    const compressed = plain.length >= COMPRESS_FROM_BYTES ? deflateRawSync(plain) : undefined;
    const compression: Compression = compressed && compressed.length < plain.length ? 'deflate' : 'none';
    const body = compression === 'deflate' ? (compressed as Buffer) : plain;
    const { id, key } = this.keys.current;
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, nonce);
    cipher.setAAD(additionalData(id, compression));
    const data = Buffer.concat([nonce, cipher.update(body), cipher.final(), cipher.getAuthTag()]);
    return {
      metadata: {
        encoding: utf8.encode(ENCRYPTED_ENCODING),
        [CIPHER_METADATA]: utf8.encode(CIPHER),
        [KEY_ID_METADATA]: utf8.encode(id),
        [COMPRESSION_METADATA]: utf8.encode(compression),
      },
      data,
    };
  }

  decodeOne(payload: Payload): Payload {
    if (!isEncrypted(payload)) return payload;
    const keyId = metadataText(payload, KEY_ID_METADATA);
    const compression = metadataText(payload, COMPRESSION_METADATA) ?? 'none';
    if (compression !== 'deflate' && compression !== 'none') throw undecodable(`unknown compression "${compression}"`);
    const key = keyId === undefined ? undefined : this.keys.byId.get(keyId);
    if (!key) {
      throw undecodable(`it is encrypted under key ${keyId ?? '(no key id)'}, which is neither the current payload key nor one of the old keys (NSTANCE_PAYLOAD_OLD_KEYS)`);
    }
    const body = decrypt(key, compression, payload.data ?? new Uint8Array());
    const plain = compression === 'deflate' ? inflateRawSync(body) : body;
    return temporal.api.common.v1.Payload.decode(plain) as Payload;
  }
}

export function isEncrypted(payload: Payload): boolean {
  return metadataText(payload, 'encoding') === ENCRYPTED_ENCODING;
}

export function metadataText(payload: Payload, name: string): string | undefined {
  const value = payload.metadata?.[name];
  return value ? fromUtf8.decode(value) : undefined;
}

function decrypt(key: PayloadKey, compression: Compression, data: Uint8Array): Buffer {
  if (data.length < NONCE_BYTES + TAG_BYTES) throw undecodable('it is shorter than a nonce and a tag');
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const decipher = createDecipheriv('aes-256-gcm', key.key, bytes.subarray(0, NONCE_BYTES));
  decipher.setAAD(additionalData(key.id, compression));
  decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
  try {
    return Buffer.concat([decipher.update(bytes.subarray(NONCE_BYTES, bytes.length - TAG_BYTES)), decipher.final()]);
  } catch {
    throw undecodable(`it fails authentication under key ${key.id} (tampered or truncated)`);
  }
}

function additionalData(keyId: string, compression: Compression): Buffer {
  return Buffer.from(`${CIPHER}\0${keyId}\0${compression}`, 'utf8');
}

/** Retrying cannot make a payload decodable: it needs another key or was damaged. */
function undecodable(reason: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`cannot decode an encrypted payload: ${reason}`, 'PayloadDecodeError');
}
