/** Small HTTP helpers for the agent API and the codec server: bodies and JSON in and out, errors with a status and a reason code. */
import type { IncomingMessage, ServerResponse } from 'node:http';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    /** Stable, machine-readable reason (e.g. "nonce-replayed"); the message explains it to a human. */
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

const MAX_BODY = 64 * 1024;

/** The whole request body, or undefined once it passes `maxBytes` (the rest is not read). */
export async function readBodyUpTo(req: IncomingMessage, maxBytes: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export async function readJsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const body = await readBodyUpTo(req, MAX_BODY);
  if (body === undefined) throw new HttpError(413, 'body-too-large', `request body exceeds ${MAX_BODY} bytes`);
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw new HttpError(400, 'bad-json', 'request body is not JSON');
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new HttpError(400, 'bad-json', 'request body must be a JSON object');
  return value as Record<string, unknown>;
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...headers });
  res.end(text);
}

export function optionalString(body: Record<string, unknown>, name: string, max = 255): string | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v.length > max) throw new HttpError(400, 'bad-request', `"${name}" must be a string of at most ${max} characters`);
  return v;
}

export function requiredString(body: Record<string, unknown>, name: string, max = 8192): string {
  const v = optionalString(body, name, max);
  if (!v) throw new HttpError(400, 'bad-request', `"${name}" is required`);
  return v;
}
