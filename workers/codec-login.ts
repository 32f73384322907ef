/**
 * The codec server's browser login (`--auth token`). The Temporal Web UI cannot send a bearer token
 * of its own to a codec endpoint: it can only send the browser's cookies ("include cross-origin
 * credentials"). So a person opens the codec server's /login once, gives the token, and gets a
 * session cookie that the codec server accepts in place of the bearer header:
 * - GET /login: a small form (or, when already signed in, a sign-out button);
 * - POST /login (token=...): the right token opens a session and sets it as an HttpOnly,
 *   SameSite=Strict cookie on path /, living --login-ttl; a wrong one is 401, and no cookie;
 * - GET or POST /logout: the session ends and the cookie is cleared.
 * The cookie holds a random session id, never the token: a copied cookie stops working at logout
 * or expiry, and sessions live in this process only (bounded in number), so a restart signs
 * everyone out. Login and logout accept only same-origin form posts (the Origin names this
 * server), so another page cannot sign a browser in or out.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBodyUpTo } from './agent-api/http';

export const SESSION_COOKIE = 'nstance_codec_session';
export const DEFAULT_LOGIN_TTL_MS = 8 * 3_600_000;
const MAX_SESSIONS = 10_000;
const MAX_FORM_BYTES = 4096;

export interface LoginSessionsOptions {
  ttlMs: number;
  maxSessions?: number;
  now?: () => number;
}

/** Open sessions by the digest of their id (a memory dump shows no usable cookie), oldest first. */
export class LoginSessions {
  private readonly expiries = new Map<string, number>();
  private readonly now: () => number;

  constructor(private readonly options: LoginSessionsOptions) {
    if (!(options.ttlMs > 0)) throw new RangeError(`a login session must live more than 0 ms, not ${options.ttlMs}`);
    this.now = options.now ?? Date.now;
  }

  get ttlMs(): number {
    return this.options.ttlMs;
  }

  /** A new session's id (32 random bytes, base64url), valid for ttlMs. */
  open(): string {
    const id = randomBytes(32).toString('base64url');
    const now = this.now();
    this.expiries.set(digest(id), now + this.options.ttlMs);
    const max = this.options.maxSessions ?? MAX_SESSIONS;
    if (this.expiries.size > max) {
      for (const [key, expiry] of this.expiries) if (expiry <= now) this.expiries.delete(key);
      for (const key of this.expiries.keys()) {
        if (this.expiries.size <= max) break;
        this.expiries.delete(key);
      }
    }
    return id;
  }

  valid(id: string): boolean {
    const key = digest(id);
    const expiry = this.expiries.get(key);
    if (expiry === undefined) return false;
    if (expiry > this.now()) return true;
    this.expiries.delete(key);
    return false;
  }

  close(id: string): void {
    this.expiries.delete(digest(id));
  }

  get size(): number {
    return this.expiries.size;
  }
}

export interface LoginRoutes {
  sessions: LoginSessions;
  /** Whether a token is one the codec server accepts (compared in constant time). */
  acceptsToken(token: string): boolean;
  /** Adds `Secure` to the cookie: set it when the browser reaches the codec server over https (a TLS proxy). */
  secureCookie: boolean;
  /** Where to go back to once signed in (the first Web UI origin). */
  uiOrigin?: string;
}

/** The session id the request's cookie carries, if it names an open session. */
export function sessionOf(req: IncomingMessage, sessions: LoginSessions): string | undefined {
  const id = cookieValue(req.headers.cookie, SESSION_COOKIE);
  return id !== undefined && sessions.valid(id) ? id : undefined;
}

/** Answers /login and /logout; false for any other path (the caller's to answer). */
export async function handleLoginRoute(req: IncomingMessage, res: ServerResponse, path: string, routes: LoginRoutes): Promise<boolean> {
  if (path !== '/login' && path !== '/logout') return false;
  if (!sameOrigin(req)) {
    sendPage(res, 403, 'Refused', '<p>Sign in and out only from this page itself.</p>');
    return true;
  }
  if (path === '/logout') {
    if (req.method !== 'GET' && req.method !== 'POST') return methodNotAllowed(res, 'GET, POST');
    const id = cookieValue(req.headers.cookie, SESSION_COOKIE);
    if (id !== undefined) routes.sessions.close(id);
    sendPage(res, 200, 'Signed out', `<p>Signed out of the codec server.</p>${loginLink()}`, { 'set-cookie': cookie('', 0, routes.secureCookie) });
    return true;
  }
  if (req.method === 'GET') {
    const signedIn = sessionOf(req, routes.sessions) !== undefined;
    sendPage(res, 200, 'Codec server', signedIn ? `<p>Signed in: the Web UI decodes payloads through this codec server.</p>${backLink(routes.uiOrigin)}${LOGOUT_FORM}` : LOGIN_FORM);
    return true;
  }
  if (req.method !== 'POST') return methodNotAllowed(res, 'GET, POST');
  const body = await readBodyUpTo(req, MAX_FORM_BYTES);
  const token = body === undefined ? undefined : new URLSearchParams(body.toString('utf8')).get('token')?.trim();
  if (!token || !routes.acceptsToken(token)) {
    sendPage(res, 401, 'Not signed in', `<p>That is not a token this codec server accepts.</p>${LOGIN_FORM}`);
    return true;
  }
  const id = routes.sessions.open();
  sendPage(res, 200, 'Signed in', `<p>Signed in for ${describeTtl(routes.sessions.ttlMs)}: the Web UI now decodes payloads through this codec server.</p>${backLink(routes.uiOrigin)}${LOGOUT_FORM}`, {
    'set-cookie': cookie(id, Math.floor(routes.sessions.ttlMs / 1000), routes.secureCookie),
  });
  return true;
}

function cookie(value: string, maxAgeSeconds: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${value}; Path=/; Max-Age=${maxAgeSeconds}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const at = part.indexOf('=');
    if (at > 0 && part.slice(0, at).trim() === name) return part.slice(at + 1).trim();
  }
  return undefined;
}

/** No Origin (a typed URL, a tool), or an Origin naming this very server (its own form). */
function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

function methodNotAllowed(res: ServerResponse, allow: string): true {
  sendPage(res, 405, 'Method not allowed', `<p>${allow} only.</p>`, { allow });
  return true;
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function describeTtl(ms: number): string {
  return ms % 3_600_000 === 0 ? `${ms / 3_600_000} h` : `${Math.round(ms / 60_000)} min`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const LOGIN_FORM =
  '<form method="post" action="/login"><label>Codec server token <input type="password" name="token" autocomplete="off" autofocus required></label> <button type="submit">Sign in</button></form>';
const LOGOUT_FORM = '<form method="post" action="/logout"><button type="submit">Sign out</button></form>';

function loginLink(): string {
  return '<p><a href="/login">Sign in again</a></p>';
}

function backLink(uiOrigin: string | undefined): string {
  return uiOrigin ? `<p><a href="${escapeHtml(uiOrigin)}">Back to the Web UI</a> (reload its pages to decode them).</p>` : '';
}

function sendPage(res: ServerResponse, status: number, title: string, body: string, headers: Record<string, string> = {}): void {
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>nstance codec server: ${escapeHtml(title)}</title></head><body><h1>${escapeHtml(title)}</h1>${body}</body></html>`;
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(html),
    'cache-control': 'no-store',
    // No script, no framing (the form cannot be overlaid by another page), posts to itself only.
    'content-security-policy': "default-src 'none'; form-action 'self'; frame-ancestors 'none'",
    'x-frame-options': 'DENY',
    // same-origin, not no-referrer: under no-referrer the browser posts the form with `Origin: null`, which the same-origin check refuses.
    'referrer-policy': 'same-origin',
    ...headers,
  });
  res.end(html);
}
