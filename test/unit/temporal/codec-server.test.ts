import { randomBytes } from 'node:crypto';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { isEncrypted, NstancePayloadCodec } from '../../../adapters/temporal/payload-codec';
import { payloadKeyRing } from '../../../adapters/temporal/payload-keys';
import { startCodecServer, type CodecServer, type CodecServerAuth } from '../../../workers/codec-server';

const UI = 'http://localhost:8233';
const codec = new NstancePayloadCodec(payloadKeyRing({ current: randomBytes(32) }));
const servers: CodecServer[] = [];

afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

async function start(auth: CodecServerAuth, host = '127.0.0.1'): Promise<string> {
  const server = await startCodecServer({ codec, auth, allowedOrigins: [UI], host, port: 0 });
  servers.push(server);
  return server.url;
}

function asJson(payloads: Payload[]): string {
  return JSON.stringify({ payloads: payloads.map((p) => temporal.api.common.v1.Payload.toObject(temporal.api.common.v1.Payload.create(p), { bytes: String })) });
}

function fromJson(body: { payloads: Record<string, unknown>[] }): Payload[] {
  return body.payloads.map((p) => temporal.api.common.v1.Payload.fromObject(p) as Payload);
}

async function post(url: string, path: string, payloads: Payload[], headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-namespace': 'default', ...headers }, body: asJson(payloads) });
}

test('decode answers the plaintext of what the codec encrypted; encode encrypts; a token is required', async () => {
  const url = await start({ mode: 'token', tokens: ['s3cret-token'] });
  const encrypted = await codec.encode([defaultPayloadConverter.toPayload({ nonce: 'abc' })]);
  const denied = await post(url, '/decode', encrypted);
  expect(denied.status).toBe(401);
  expect((await post(url, '/decode', encrypted, { authorization: 'Bearer wrong' })).status).toBe(401);
  const decoded = await post(url, '/decode', encrypted, { authorization: 'Bearer s3cret-token' });
  expect(decoded.status).toBe(200);
  const [plain] = fromJson((await decoded.json()) as { payloads: Record<string, unknown>[] });
  expect(defaultPayloadConverter.fromPayload(plain as Payload)).toEqual({ nonce: 'abc' });
  const encoded = await post(url, '/encode', [defaultPayloadConverter.toPayload('x')], { authorization: 'Bearer s3cret-token' });
  const [again] = fromJson((await encoded.json()) as { payloads: Record<string, unknown>[] });
  expect(isEncrypted(again as Payload)).toBe(true);
});

test('CORS: the UI origin gets a preflight and credentialed answers; another origin is refused', async () => {
  const url = await start({ mode: 'token', tokens: ['t'] });
  const preflight = await fetch(`${url}/decode`, { method: 'OPTIONS', headers: { origin: UI, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,x-namespace,content-type' } });
  expect(preflight.status).toBe(204);
  expect(preflight.headers.get('access-control-allow-origin')).toBe(UI);
  expect(preflight.headers.get('access-control-allow-credentials')).toBe('true');
  expect(preflight.headers.get('access-control-allow-headers')).toMatch(/x-namespace/);
  const fromUi = await post(url, '/decode', [], { origin: UI, authorization: 'Bearer t' });
  expect(fromUi.status).toBe(200);
  expect(fromUi.headers.get('access-control-allow-origin')).toBe(UI);
  const elsewhere = await post(url, '/decode', [], { origin: 'http://evil.example', authorization: 'Bearer t' });
  expect(elsewhere.status).toBe(403);
});

test('temporal mode: the UI header is accepted when Temporal accepts it for the namespace, and the answer is cached', async () => {
  const asked: string[] = [];
  const url = await start({
    mode: 'temporal',
    authorize: async (namespace, authorization) => {
      asked.push(`${namespace} ${authorization}`);
      if (authorization !== 'Bearer user-jwt') throw new Error('PermissionDenied');
      return true;
    },
  });
  for (let i = 0; i < 3; i++) expect((await post(url, '/decode', [], { authorization: 'Bearer user-jwt' })).status).toBe(200);
  expect((await post(url, '/decode', [], { authorization: 'Bearer other' })).status).toBe(401);
  expect((await post(url, '/decode', [], {})).status).toBe(401);
  expect(asked).toEqual(['default Bearer user-jwt', 'default Bearer other']);
});

test('bad bodies, unknown paths and undecodable payloads are refused with a reason', async () => {
  const url = await start({ mode: 'none' });
  expect((await fetch(`${url}/decode`, { method: 'POST', body: 'not json' })).status).toBe(400);
  expect((await fetch(`${url}/other`, { method: 'POST', body: '{}' })).status).toBe(404);
  const [foreign] = await new NstancePayloadCodec(payloadKeyRing({ current: randomBytes(32) })).encode([defaultPayloadConverter.toPayload(1)]);
  const refused = await post(url, '/decode', [foreign as Payload]);
  expect(refused.status).toBe(422);
  expect(((await refused.json()) as { message: string }).message).toMatch(/neither the current payload key/);
});

test('without authentication it refuses to listen beyond loopback', async () => {
  await expect(start({ mode: 'none' }, '0.0.0.0')).rejects.toThrow(/only on loopback/);
});
