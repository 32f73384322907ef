/**
 * `nstance codec-server`: Temporal's remote codec endpoint (POST /encode, POST /decode, payloads as
 * proto3 JSON), so the Web UI and `temporal workflow show --codec-endpoint` show decrypted payloads
 * to the people allowed to see them, while the server and its database only ever hold ciphertext.
 *
 * Who may call it:
 * - `token`: a bearer token from a file or NSTANCE_CODEC_SERVER_TOKEN (tools, CI, a UI whose
 *   operator pastes the token into the UI's codec settings);
 * - `temporal`: the Temporal UI's own auth header (codec "pass access token"): the token is
 *   accepted when Temporal itself accepts it for the request's namespace (DescribeNamespace with
 *   that authorization header), so whoever may read the namespace may decode it; answers cached;
 * - `none`: only when listening on loopback (the laptop demo).
 * Browsers may call it only from the configured UI origins (CORS); other origins are refused.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { TtlCache } from './agent-api/ttl-cache';

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
  const authorized = authorizer(options.auth);
  const server = createServer((req, res) => {
    handle(req, res, options, authorized).catch((err: Error) => {
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

async function handle(req: IncomingMessage, res: ServerResponse, options: CodecServerOptions, authorized: (req: IncomingMessage) => Promise<boolean>): Promise<void> {
  const origin = req.headers.origin;
  const cors = corsHeaders(req, options.allowedOrigins);
  if (origin !== undefined && !cors['access-control-allow-origin']) return send(res, 403, { message: `origin ${origin} may not call this codec server` });
  if (req.method === 'OPTIONS') {
    res.writeHead(204, { ...cors, 'access-control-allow-methods': 'POST, OPTIONS', 'access-control-allow-headers': 'authorization, content-type, x-namespace', 'access-control-max-age': '600' });
    return void res.end();
  }
  const path = (req.url ?? '').split('?')[0];
  const operation = path === '/encode' ? 'encode' : path === '/decode' ? 'decode' : undefined;
  if (!operation) return send(res, 404, { message: 'POST /encode or /decode' }, cors);
  if (req.method !== 'POST') return send(res, 405, { message: 'POST only' }, { ...cors, allow: 'POST, OPTIONS' });
  if (!(await authorized(req))) return send(res, 401, { message: 'unauthorized' }, { ...cors, 'www-authenticate': 'Bearer' });
  const body = await readBody(req);
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

function authorizer(auth: CodecServerAuth): (req: IncomingMessage) => Promise<boolean> {
  if (auth.mode === 'none') return async () => true;
  if (auth.mode === 'token') {
    const digests = auth.tokens.map(digest);
    return async (req) => {
      const token = bearer(req);
      if (token === undefined) return false;
      const presented = digest(token);
      // Every token compared, in constant time: how far a guess matched stays hidden.
      return digests.reduce((ok, d) => timingSafeEqual(d, presented) || ok, false);
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

async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
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

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...headers });
  res.end(text);
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
