import { randomBytes } from 'node:crypto';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { isEncrypted, NstancePayloadCodec } from '../../../adapters/temporal/payload-codec';
import { payloadKeyRing } from '../../../adapters/temporal/payload-keys';
import { startCodecServer, type CodecServer, type CodecServerAuth } from '../../../workers/codec-server';
import { LoginSessions, SESSION_COOKIE } from '../../../workers/codec-login';

const UI = 'http://localhost:8233';
const codec = new NstancePayloadCodec(payloadKeyRing({ current: randomBytes(32) }));
const servers: CodecServer[] = [];

afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

async function start(auth: CodecServerAuth, host = '127.0.0.1', loginTtlMs?: number): Promise<string> {
  const server = await startCodecServer({ codec, auth, allowedOrigins: [UI], host, port: 0, loginTtlMs });
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
  expect(elsewhere.headers.get('access-control-allow-origin')).toBeNull();
  const preflightElsewhere = await fetch(`${url}/decode`, { method: 'OPTIONS', headers: { origin: 'http://localhost:9999', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-namespace' } });
  expect(preflightElsewhere.status).toBe(403);
  expect([preflightElsewhere.headers.get('access-control-allow-origin'), preflightElsewhere.headers.get('access-control-allow-credentials')]).toEqual([null, null]);
});

/** POST /login as the login page's own form does (same origin, urlencoded). */
async function login(url: string, token: string, origin = url): Promise<Response> {
  return fetch(`${url}/login`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', origin }, body: new URLSearchParams({ token }).toString(), redirect: 'manual' });
}

/** The `name=value` part of a Set-Cookie header, for sending it back as a browser would. */
function cookieOf(response: Response): string {
  return (response.headers.get('set-cookie') ?? '').split(';')[0];
}

test('browser login: the form, a wrong token refused without a cookie, the right one sets a session cookie the codec accepts in place of the bearer header', async () => {
  const url = await start({ mode: 'token', tokens: ['the-right-token'] });
  const encrypted = await codec.encode([defaultPayloadConverter.toPayload({ nonce: 'from-the-browser' })]);
  // No token, no cookie: refused.
  expect((await post(url, '/decode', encrypted, { origin: UI })).status).toBe(401);

  const form = await fetch(`${url}/login`);
  expect(form.status).toBe(200);
  expect(form.headers.get('content-type')).toMatch(/^text\/html/);
  expect(form.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
  expect(await form.text()).toMatch(/<form method="post" action="\/login">.*type="password" name="token"/);

  const wrong = await login(url, 'not-the-token');
  expect(wrong.status).toBe(401);
  expect(wrong.headers.get('set-cookie')).toBeNull();

  const right = await login(url, 'the-right-token');
  expect(right.status).toBe(200);
  const setCookie = right.headers.get('set-cookie') ?? '';
  expect(setCookie.split(/;\s*/).slice(1).sort()).toEqual(['HttpOnly', 'Max-Age=28800', 'Path=/', 'SameSite=Strict']);
  const session = cookieOf(right);
  expect(session).toMatch(new RegExp(`^${SESSION_COOKIE}=[A-Za-z0-9_-]{43}$`));
  expect(session).not.toContain('the-right-token');
  // The page says so, and links back to the Web UI.
  expect(await right.text()).toContain(`href="${UI}"`);

  // The cookie decodes, from the UI's origin, with credentialed CORS headers.
  const decoded = await post(url, '/decode', encrypted, { origin: UI, cookie: session });
  expect(decoded.status).toBe(200);
  expect([decoded.headers.get('access-control-allow-origin'), decoded.headers.get('access-control-allow-credentials')]).toEqual([UI, 'true']);
  const [plain] = fromJson((await decoded.json()) as { payloads: Record<string, unknown>[] });
  expect(defaultPayloadConverter.fromPayload(plain as Payload)).toEqual({ nonce: 'from-the-browser' });
  // ...but not from another origin, and a made-up session is nobody's.
  expect((await post(url, '/decode', encrypted, { origin: 'http://evil.example', cookie: session })).status).toBe(403);
  expect((await post(url, '/decode', encrypted, { origin: UI, cookie: `${SESSION_COOKIE}=${'A'.repeat(43)}` })).status).toBe(401);
  // A wrong bearer header is judged alone: the cookie does not rescue it.
  expect((await post(url, '/decode', encrypted, { origin: UI, cookie: session, authorization: 'Bearer wrong' })).status).toBe(401);
  // Signed in, the login page offers to sign out.
  expect(await (await fetch(`${url}/login`, { headers: { cookie: session } })).text()).toContain('action="/logout"');

  // Sign out: the cookie is cleared, and the old session no longer decodes.
  const out = await fetch(`${url}/logout`, { method: 'POST', headers: { origin: url, cookie: session }, redirect: 'manual' });
  expect(out.status).toBe(200);
  expect(out.headers.get('set-cookie')).toMatch(new RegExp(`^${SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict$`));
  expect((await post(url, '/decode', encrypted, { origin: UI, cookie: session })).status).toBe(401);
});

test('browser login: another page cannot sign a browser in or out, and the other auth modes have no login', async () => {
  const url = await start({ mode: 'token', tokens: ['tok'] });
  // From the UI's origin, and from an opaque one (a sandboxed frame, a page under no-referrer posts `Origin: null`).
  for (const origin of [UI, 'null']) {
    const forged = await login(url, 'tok', origin);
    expect(forged.status).toBe(403);
    expect(forged.headers.get('set-cookie')).toBeNull();
  }
  const session = cookieOf(await login(url, 'tok'));
  expect((await fetch(`${url}/logout`, { method: 'POST', headers: { origin: 'http://evil.example', cookie: session } })).status).toBe(403);
  expect((await post(url, '/decode', [], { origin: UI, cookie: session })).status).toBe(200);
  expect((await fetch(`${url}/login`, { method: 'PUT' })).status).toBe(405);
  const open = await start({ mode: 'none' });
  expect((await fetch(`${open}/login`)).status).toBe(404);
});

test('a login session ends at its lifetime, and the oldest go first past the bound', () => {
  let now = 1_000_000;
  const sessions = new LoginSessions({ ttlMs: 60_000, maxSessions: 2, now: () => now });
  const first = sessions.open();
  now += 59_999;
  expect(sessions.valid(first)).toBe(true);
  now += 1;
  expect(sessions.valid(first)).toBe(false);
  const [a, b, c] = [sessions.open(), sessions.open(), sessions.open()];
  expect([a, b, c].map((id) => sessions.valid(id))).toEqual([false, true, true]);
  expect(sessions.size).toBe(2);
  expect(() => new LoginSessions({ ttlMs: 0 })).toThrow(/more than 0 ms/);
});

test('--login-ttl sets the cookie lifetime', async () => {
  const url = await start({ mode: 'token', tokens: ['tok'] }, '127.0.0.1', 30 * 60_000);
  expect((await login(url, 'tok')).headers.get('set-cookie')).toContain('Max-Age=1800');
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
