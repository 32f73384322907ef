/**
 * `nstance codec-server`: Temporal's remote codec endpoint (POST /encode, POST /decode, payloads as
 * proto3 JSON), so the Web UI and `temporal workflow show --codec-endpoint` show decrypted payloads
 * to the people allowed to see them, while the server and its database only ever hold ciphertext.
 *
 * Who may call it:
 * - `token`: a bearer token from a file or NSTANCE_CODEC_SERVER_TOKEN (tools, CI), or, for a
 *   browser, the session cookie its /login sets for that token (codec-login.ts: the Web UI sends
 *   cookies to its codec endpoint when it "includes cross-origin credentials", never a token);
 * - `temporal`: the Temporal UI's own auth header (codec "pass access token"): the token is
 *   accepted when Temporal itself accepts it for the request's namespace (DescribeNamespace with
 *   that authorization header), so whoever may read the namespace may decode it; answers cached;
 * - `none`: only when listening on loopback (the laptop demo).
 * Browsers may call it only from the configured UI origins (CORS, credentials allowed for exactly
 * those origins, never `*`); other origins are refused.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { readBodyUpTo, sendJson as send } from './agent-api/http';
import { TtlCache } from './agent-api/ttl-cache';
import { DEFAULT_LOGIN_TTL_MS, handleLoginRoute, LoginSessions, sessionOf, type LoginRoutes } from './codec-login';

export type CodecServerAuth = { mode: 'token'; tokens: string[] } | { mode: 'temporal'; authorize: NamespaceAuthorizer } | { mode: 'none' };

/** Answers whether Temporal accepts this authorization header for a namespace. */
export type NamespaceAuthorizer = (namespace: string, authorization: string) => Promise<boolean>;

export interface CodecServerOptions {
  codec: PayloadCodec;
  auth: CodecServerAuth;
  /** Origins allowed to call from a browser, e.g. http://localhost:8233 (the UI). */
  allowedOrigins: string[];
  host: string;
  port: number;
  /** Lets `none` listen beyond loopback: only where something else limits who reaches it (a container whose port is published on loopback). */
  unauthenticatedBeyondLoopback?: boolean;
  /** `token` mode: how long a browser login (/login) lasts (default 8 h). */
  loginTtlMs?: number;
  /** `token` mode: mark the login cookie Secure (the browser reaches this server over https, through a TLS proxy). */
  secureCookie?: boolean;
  log?: (line: string) => void;
}

export interface CodecServer {
  url: string;
  close(): Promise<void>;
}

/** The UI decodes a whole history page in one call; Temporal caps one payload at 2 MB. */
const MAX_BODY_BYTES = 32 * 1024 * 1024;
const AUTHORIZATION_CACHE_MS = 60_000;
const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export class CodecServerConfigError extends Error {
  override name = 'CodecServerConfigError';
}

export async function startCodecServer(options: CodecServerOptions): Promise<CodecServer> {
  if (options.auth.mode === 'none' && !LOOPBACK.has(options.host) && !options.unauthenticatedBeyondLoopback) {
    throw new CodecServerConfigError(`the codec server without authentication listens only on loopback, not ${options.host}: give it a token (--token-file or NSTANCE_CODEC_SERVER_TOKEN) or --auth temporal`);
  }
  if (options.auth.mode === 'token' && options.auth.tokens.length === 0) throw new CodecServerConfigError('--auth token needs at least one token');
  const login = options.auth.mode === 'token' ? loginRoutes(options.auth.tokens, options) : undefined;
  const authorized = authorizer(options.auth, login);
  const server = createServer((req, res) => {
    handle(req, res, options, authorized, login).catch((err: Error) => {
      options.log?.(`codec server: ${req.method} ${req.url} failed: ${err.message}`);
      if (!res.headersSent) send(res, 500, { message: 'internal error' }, corsHeaders(req, options.allowedOrigins));
      else res.destroy();
    });
  });
  await listen(server, options.port, options.host);
  const { port } = server.address() as AddressInfo;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    url: `http://${host}:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function handle(req: IncomingMessage, res: ServerResponse, options: CodecServerOptions, authorized: (req: IncomingMessage) => Promise<boolean>, login: LoginRoutes | undefined): Promise<void> {
  const path = (req.url ?? '').split('?')[0];
  // The login pages are this server's own (same-origin forms, checked there), not the UI's CORS calls.
  if (login && (await handleLoginRoute(req, res, path, login))) return;
  const origin = req.headers.origin;
  const cors = corsHeaders(req, options.allowedOrigins);
  if (origin !== undefined && !cors['access-control-allow-origin']) return send(res, 403, { message: `origin ${origin} may not call this codec server` });
  if (req.method === 'OPTIONS') {
    res.writeHead(204, { ...cors, 'access-control-allow-methods': 'POST, OPTIONS', 'access-control-allow-headers': 'authorization, content-type, x-namespace', 'access-control-max-age': '600' });
    return void res.end();
  }
  const operation = path === '/encode' ? 'encode' : path === '/decode' ? 'decode' : undefined;
  if (!operation) return send(res, 404, { message: 'POST /encode or /decode' }, cors);
  if (req.method !== 'POST') return send(res, 405, { message: 'POST only' }, { ...cors, allow: 'POST, OPTIONS' });
  if (!(await authorized(req))) return send(res, 401, { message: 'unauthorized' }, { ...cors, 'www-authenticate': 'Bearer' });
  const body = await readBodyUpTo(req, MAX_BODY_BYTES);
  if (body === undefined) return send(res, 413, { message: `body exceeds ${MAX_BODY_BYTES} bytes` }, cors);
  const payloads = parsePayloads(body);
  if (!payloads) return send(res, 400, { message: 'body must be {"payloads": [Payload, ...]} in proto3 JSON' }, cors);
  let result: Payload[];
  try {
    result = operation === 'encode' ? await options.codec.encode(payloads) : await options.codec.decode(payloads);
  } catch (err) {
    return send(res, 422, { message: (err as Error).message }, cors);
  }
  send(res, 200, { payloads: result.map(payloadToJson) }, cors);
}

function loginRoutes(tokens: string[], options: CodecServerOptions): LoginRoutes {
  return {
    sessions: new LoginSessions({ ttlMs: options.loginTtlMs ?? DEFAULT_LOGIN_TTL_MS }),
    acceptsToken: tokenMatcher(tokens),
    secureCookie: options.secureCookie ?? false,
    uiOrigin: options.allowedOrigins[0],
  };
}

/** Every token compared, in constant time: how far a guess matched stays hidden. */
function tokenMatcher(tokens: string[]): (token: string) => boolean {
  const digests = tokens.map(digest);
  return (token) => {
    const presented = digest(token);
    return digests.reduce((ok, d) => timingSafeEqual(d, presented) || ok, false);
  };
}

function authorizer(auth: CodecServerAuth, login: LoginRoutes | undefined): (req: IncomingMessage) => Promise<boolean> {
  if (auth.mode === 'none') return async () => true;
  if (auth.mode === 'token') {
    const accepts = login?.acceptsToken ?? tokenMatcher(auth.tokens);
    // A bearer header is judged alone (a wrong one is not rescued by a cookie); without one, the login's cookie.
    return async (req) => {
      const token = bearer(req);
      if (token !== undefined) return accepts(token);
      return login !== undefined && sessionOf(req, login.sessions) !== undefined;
    };
  }
  // One DescribeNamespace per user and namespace a minute, however many pages the UI decodes.
  const answers = new TtlCache<string, boolean>({ ttlMs: AUTHORIZATION_CACHE_MS, maxEntries: 10_000 });
  return async (req) => {
    const authorization = req.headers.authorization;
    const namespace = headerValue(req, 'x-namespace');
    if (!authorization || !namespace) return false;
    const key = `${namespace}\0${digest(authorization).toString('hex')}`;
    return answers.get(key, () => auth.authorize(namespace, authorization).catch(() => false));
  };
}

function bearer(req: IncomingMessage): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  return match?.[1];
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function corsHeaders(req: IncomingMessage, allowedOrigins: string[]): Record<string, string> {
  const origin = req.headers.origin;
  if (origin === undefined || !allowedOrigins.includes(origin)) return { vary: 'Origin' };
  return { 'access-control-allow-origin': origin, 'access-control-allow-credentials': 'true', vary: 'Origin' };
}

function parsePayloads(body: Buffer): Payload[] | undefined {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  const list = (value as { payloads?: unknown } | null)?.payloads;
  if (!Array.isArray(list)) return undefined;
  try {
    return list.map((item) => temporal.api.common.v1.Payload.fromObject(item as Record<string, unknown>) as Payload);
  } catch {
    return undefined;
  }
}

function payloadToJson(payload: Payload): Record<string, unknown> {
  return temporal.api.common.v1.Payload.toObject(temporal.api.common.v1.Payload.create(payload), { bytes: String });
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
