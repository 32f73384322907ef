import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplicationFailure, defaultPayloadConverter, type Payload } from '@temporalio/common';
import { decodeFromPayloadsAtIndex, decodeOptionalFailureToOptionalError, encodeErrorToFailure, encodeToPayloads, loadDataConverter } from '@temporalio/common/lib/internal-non-workflow';
import { temporal } from '@temporalio/proto';
import { nstanceDataConverter } from '../../../adapters/temporal/data-converter';
import { COMPRESSION_METADATA, isEncrypted, KEY_ID_METADATA, metadataText, NstancePayloadCodec } from '../../../adapters/temporal/payload-codec';
import { payloadKeyId, payloadKeyRing, payloadKeyRingFromEnv } from '../../../adapters/temporal/payload-keys';

const SECRET = 'eyJhbGciOiJFZERTQSJ9.registration-nonce-that-must-not-leak';

function ring(): { key: Buffer; codec: NstancePayloadCodec } {
  const key = randomBytes(32);
  return { key, codec: new NstancePayloadCodec(payloadKeyRing({ current: key })) };
}

function plain(value: unknown): Payload {
  return defaultPayloadConverter.toPayload(value);
}

function bytesContain(payload: Payload, text: string): boolean {
  return Buffer.from(temporal.api.common.v1.Payload.encode(payload).finish()).includes(text);
}

describe('payload codec', () => {
  test('round trip: metadata and data come back byte for byte; nothing readable on the wire', async () => {
    const { codec } = ring();
    const original = plain({ userdata: `#!/bin/sh\nNONCE=${SECRET}`, vars: { a: 'b' } });
    const [encoded] = await codec.encode([original]);
    expect(isEncrypted(encoded as Payload)).toBe(true);
    expect(metadataText(encoded as Payload, KEY_ID_METADATA)).toBe(codec.currentKeyId);
    expect(bytesContain(encoded as Payload, SECRET)).toBe(false);
    expect(bytesContain(encoded as Payload, 'json/plain')).toBe(false);
    const [decoded] = await codec.decode([encoded as Payload]);
    expect(Buffer.from((decoded as Payload).data as Uint8Array).toString()).toBe(Buffer.from(original.data as Uint8Array).toString());
    expect(metadataText(decoded as Payload, 'encoding')).toBe('json/plain');
  });

  test('compresses what compresses, and only that', async () => {
    const { codec } = ring();
    const big = plain('x'.repeat(10_000));
    const [encoded] = await codec.encode([big, plain(1)]);
    expect(metadataText(encoded as Payload, COMPRESSION_METADATA)).toBe('deflate');
    expect((encoded as Payload).data?.length).toBeLessThan(200);
    const [, small] = await codec.encode([big, plain(1)]);
    expect(metadataText(small as Payload, COMPRESSION_METADATA)).toBe('none');
    const [back] = await codec.decode([encoded as Payload]);
    expect(defaultPayloadConverter.fromPayload(back as Payload)).toBe('x'.repeat(10_000));
  });

  test('two encodings of the same value differ (fresh nonce each time)', async () => {
    const { codec } = ring();
    const [a, b] = await codec.encode([plain('same'), plain('same')]);
    expect(Buffer.from((a as Payload).data as Uint8Array).equals(Buffer.from((b as Payload).data as Uint8Array))).toBe(false);
  });

  test('payloads written before the codec (plaintext) decode unchanged', async () => {
    const { codec } = ring();
    const old = plain({ written: 'before the codec' });
    const [decoded] = await codec.decode([old]);
    expect(decoded).toBe(old);
  });

  test('rotation: the old key decodes what it wrote, the new key encrypts', async () => {
    const oldKey = randomBytes(32);
    const [written] = await new NstancePayloadCodec(payloadKeyRing({ current: oldKey })).encode([plain(SECRET)]);
    const rotated = new NstancePayloadCodec(payloadKeyRing({ current: randomBytes(32), old: [oldKey] }));
    const [decoded] = await rotated.decode([written as Payload]);
    expect(defaultPayloadConverter.fromPayload(decoded as Payload)).toBe(SECRET);
    const [fresh] = await rotated.encode([plain(SECRET)]);
    expect(metadataText(fresh as Payload, KEY_ID_METADATA)).toBe(rotated.currentKeyId);
    expect(rotated.currentKeyId).not.toBe(payloadKeyId(oldKey));
  });

  test('an unknown key id, a tampered ciphertext or a swapped compression flag fails, non-retryably, naming the cause', async () => {
    const { codec } = ring();
    const [encoded] = await codec.encode([plain(SECRET)]);
    const stranger = new NstancePayloadCodec(payloadKeyRing({ current: randomBytes(32) }));
    await expect(stranger.decode([encoded as Payload])).rejects.toThrow(/encrypted under key k1-[0-9a-f]{16}, which is neither/);
    const tampered = { ...encoded, data: Buffer.from((encoded as Payload).data as Uint8Array) };
    (tampered.data as Buffer)[20] ^= 1;
    await expect(codec.decode([tampered])).rejects.toThrow(/fails authentication/);
    const swapped = { ...encoded, metadata: { ...(encoded as Payload).metadata, [COMPRESSION_METADATA]: Buffer.from('deflate') } };
    const error = await codec.decode([swapped]).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ApplicationFailure);
    expect((error as ApplicationFailure).nonRetryable).toBe(true);
  });

  test('the project data converter: values and failures (message and stack) are encrypted, and come back', async () => {
    const converter = loadDataConverter(nstanceDataConverter(payloadKeyRing({ current: randomBytes(32) })));
    const payloads = (await encodeToPayloads(converter, { nonce: SECRET })) as Payload[];
    expect(payloads.every(isEncrypted)).toBe(true);
    expect(await decodeFromPayloadsAtIndex(converter, 0, payloads)).toEqual({ nonce: SECRET });

    const failure = await encodeErrorToFailure(converter, ApplicationFailure.nonRetryable(`bad userdata ${SECRET}`, 'BadConfig'));
    const wire = Buffer.from(temporal.api.failure.v1.Failure.encode(failure).finish());
    expect(wire.includes(SECRET)).toBe(false);
    expect(failure.message).toBe('Encoded failure');
    const error = await decodeOptionalFailureToOptionalError(converter, failure);
    expect(error?.message).toBe(`bad userdata ${SECRET}`);
  });
});

describe('payload keys from the environment', () => {
  const key = randomBytes(32);

  test('no key and no opt-out is an error naming the variables', () => {
    expect(() => payloadKeyRingFromEnv({})).toThrow(/NSTANCE_PAYLOAD_KEY .*NSTANCE_PAYLOAD_KEY_FILE.*NSTANCE_PAYLOAD_CODEC=off/);
  });

  test('NSTANCE_PAYLOAD_CODEC=off is plaintext, and cannot be combined with a key', () => {
    expect(payloadKeyRingFromEnv({ NSTANCE_PAYLOAD_CODEC: 'off' })).toBeUndefined();
    expect(() => payloadKeyRingFromEnv({ NSTANCE_PAYLOAD_CODEC: 'off', NSTANCE_PAYLOAD_KEY: key.toString('base64') })).toThrow(/both set/);
    expect(() => payloadKeyRingFromEnv({ NSTANCE_PAYLOAD_CODEC: 'maybe' })).toThrow(/"on" or "off"/);
  });

  test('base64, hex, a file, and old keys', () => {
    const fromBase64 = payloadKeyRingFromEnv({ NSTANCE_PAYLOAD_KEY: key.toString('base64') });
    const fromHex = payloadKeyRingFromEnv({ NSTANCE_PAYLOAD_KEY: key.toString('hex') });
    const dir = mkdtempSync(join(tmpdir(), 'payload-key-'));
    writeFileSync(join(dir, 'key'), `${key.toString('base64')}\n`);
    const old = [randomBytes(32), randomBytes(32)];
    const fromFile = payloadKeyRingFromEnv({ NSTANCE_PAYLOAD_KEY_FILE: join(dir, 'key'), NSTANCE_PAYLOAD_OLD_KEYS: old.map((k) => k.toString('base64')).join(',') });
    expect(fromBase64?.current.id).toBe(payloadKeyId(key));
    expect(fromHex?.current.id).toBe(payloadKeyId(key));
    expect(fromFile?.current.id).toBe(payloadKeyId(key));
    expect([...(fromFile?.byId.keys() ?? [])]).toEqual([payloadKeyId(key), ...old.map(payloadKeyId)]);
  });

  test('a key of the wrong size or an unreadable file is rejected naming the variable', () => {
    expect(() => payloadKeyRingFromEnv({ NSTANCE_PAYLOAD_KEY: randomBytes(16).toString('base64') })).toThrow(/NSTANCE_PAYLOAD_KEY: a payload key must be exactly 32 bytes/);
    expect(() => payloadKeyRingFromEnv({ NSTANCE_PAYLOAD_KEY: key.toString('base64'), NSTANCE_PAYLOAD_OLD_KEYS: 'short' })).toThrow(/NSTANCE_PAYLOAD_OLD_KEYS \(key 1\)/);
    expect(() => payloadKeyRingFromEnv({ NSTANCE_PAYLOAD_KEY_FILE: '/nonexistent/key' })).toThrow(/NSTANCE_PAYLOAD_KEY_FILE: cannot read \/nonexistent\/key/);
  });
});
