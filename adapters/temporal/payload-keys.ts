/**
 * The keys of the payload codec: one current key (encrypts and decrypts) and any number of old keys
 * (decrypt only), as Nstance's `encryption_key` / `old_encryption_keys`. Each key's id is derived
 * from the key itself, so an operator rotates by moving the current key to the old list and never
 * names ids by hand; histories written under any key in the ring keep decoding.
 *
 * Source for now: the environment (a value or a file). The secret stores of issue 9 part 1 can
 * supply the same bytes later through `payloadKeyRing({ current, old })`.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

export const PAYLOAD_KEY_ENV = 'NSTANCE_PAYLOAD_KEY';
export const PAYLOAD_KEY_FILE_ENV = 'NSTANCE_PAYLOAD_KEY_FILE';
export const PAYLOAD_OLD_KEYS_ENV = 'NSTANCE_PAYLOAD_OLD_KEYS';
export const PAYLOAD_OLD_KEYS_FILE_ENV = 'NSTANCE_PAYLOAD_OLD_KEYS_FILE';
/** `off` runs without encryption; it must be asked for, never the silent default. */
export const PAYLOAD_CODEC_ENV = 'NSTANCE_PAYLOAD_CODEC';

export const PAYLOAD_KEY_BYTES = 32;

export interface PayloadKey {
  id: string;
  key: Buffer;
}

export interface PayloadKeyRing {
  current: PayloadKey;
  /** Every key that may decrypt, the current one included, by id. */
  byId: ReadonlyMap<string, PayloadKey>;
}

export class PayloadKeyError extends Error {
  override name = 'PayloadKeyError';
}

/** A short public fingerprint of a key: safe in payload metadata, useless to an attacker. */
export function payloadKeyId(key: Buffer): string {
  return `k1-${createHash('sha256').update('nstance payload key id\0').update(key).digest('hex').slice(0, 16)}`;
}

/** A key as text: 64 hex characters or base64 (standard or url-safe) of exactly 32 bytes. */
export function parsePayloadKey(text: string, source: string): Buffer {
  const trimmed = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(trimmed) ? Buffer.from(trimmed, 'hex') : /^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed) ? Buffer.from(trimmed, 'base64') : undefined;
  if (!key || key.length !== PAYLOAD_KEY_BYTES) {
    throw new PayloadKeyError(`${source}: a payload key must be exactly ${PAYLOAD_KEY_BYTES} bytes, as 64 hex characters or base64 (generate one with \`openssl rand -base64 32\`)`);
  }
  return key;
}

export function payloadKeyRing(keys: { current: Buffer; old?: Buffer[] }): PayloadKeyRing {
  const current = { id: payloadKeyId(keys.current), key: keys.current };
  const byId = new Map<string, PayloadKey>([[current.id, current]]);
  for (const key of keys.old ?? []) {
    const id = payloadKeyId(key);
    if (!byId.has(id)) byId.set(id, { id, key });
  }
  return { current, byId };
}

/**
 * The key ring the environment configures, or undefined when NSTANCE_PAYLOAD_CODEC=off.
 * Without a key (and without the explicit opt-out) it throws: a worker that silently wrote
 * plaintext would put every nonce and userdata in history.
 */
export function payloadKeyRingFromEnv(env: NodeJS.ProcessEnv = process.env): PayloadKeyRing | undefined {
  const mode = env[PAYLOAD_CODEC_ENV];
  if (mode !== undefined && mode !== '' && mode !== 'on' && mode !== 'off') {
    throw new PayloadKeyError(`${PAYLOAD_CODEC_ENV} must be "on" or "off", got "${mode}"`);
  }
  const currentText = valueOrFile(env, PAYLOAD_KEY_ENV, PAYLOAD_KEY_FILE_ENV);
  if (mode === 'off') {
    if (currentText) throw new PayloadKeyError(`${PAYLOAD_CODEC_ENV}=off and ${currentText.source} are both set: choose one`);
    return undefined;
  }
  if (!currentText) {
    throw new PayloadKeyError(
      `no payload encryption key: set ${PAYLOAD_KEY_ENV} (32 bytes, base64 or hex) or ${PAYLOAD_KEY_FILE_ENV}, or ${PAYLOAD_CODEC_ENV}=off to write plaintext payloads`,
    );
  }
  const current = parsePayloadKey(currentText.text, currentText.source);
  const oldText = valueOrFile(env, PAYLOAD_OLD_KEYS_ENV, PAYLOAD_OLD_KEYS_FILE_ENV);
  const old = oldText
    ? oldText.text
        .split(/[\s,]+/)
        .filter((part) => part !== '')
        .map((part, index) => parsePayloadKey(part, `${oldText.source} (key ${index + 1})`))
    : [];
  return payloadKeyRing({ current, old });
}

function valueOrFile(env: NodeJS.ProcessEnv, valueVar: string, fileVar: string): { text: string; source: string } | undefined {
  const value = env[valueVar];
  const file = env[fileVar];
  if (value && file) throw new PayloadKeyError(`${valueVar} and ${fileVar} are both set: choose one`);
  if (value) return { text: value, source: valueVar };
  if (!file) return undefined;
  try {
    return { text: readFileSync(file, 'utf8'), source: `${fileVar} (${file})` };
  } catch (err) {
    throw new PayloadKeyError(`${fileVar}: cannot read ${file}: ${(err as Error).message}`);
  }
}
