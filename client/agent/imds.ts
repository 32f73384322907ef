/**
 * Spot interruption notices from the EC2 instance metadata service (IMDSv2): a
 * session token from `PUT /latest/api/token`, then
 * `GET /latest/meta-data/spot/instance-action`, which answers 404 until EC2 decides
 * to reclaim the instance and then `{"action": "terminate"|"stop"|"hibernate",
 * "time": "<ISO deadline>"}` (about two minutes ahead).
 *
 * IMDS answers in milliseconds on EC2, so every request gets a short timeout. Off
 * EC2 (a laptop, a test) nothing answers at 169.254.169.254: that is "no notice",
 * never an error that could stop the agent from reporting health.
 */
import { request } from 'node:http';

export const DEFAULT_IMDS_URL = 'http://169.254.169.254';
export const IMDS_URL_ENV = 'NSTANCE_IMDS_URL';

export interface TerminationNotice {
  /** When the host is reclaimed (ISO time). */
  deadline: string;
  reason?: string;
}

/** Where termination notices come from: never throws; undefined means none (or nobody to ask). */
export interface NoticeSource {
  poll(): Promise<TerminationNotice | undefined>;
}

export interface ImdsOptions {
  /** IMDS base URL; a path is kept (a test's fake serves many instances under prefixes). */
  baseUrl?: string;
  /** Per request, connect included. */
  timeoutMs?: number;
  /** Session token lifetime asked for (X-aws-ec2-metadata-token-ttl-seconds, at most 21600). */
  tokenTtlSeconds?: number;
  /** Told when IMDS stops or starts answering (not on every poll: off EC2 it never answers). */
  log?: (line: string) => void;
  now?: () => number;
}

interface Reply {
  status: number;
  body: string;
}

export class ImdsNotices implements NoticeSource {
  readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly ttlSeconds: number;
  private readonly now: () => number;
  private token: { value: string; expiresAt: number } | undefined;
  private reachable: boolean | undefined;

  constructor(private readonly options: ImdsOptions = {}) {
    this.baseUrl = (options.baseUrl ?? DEFAULT_IMDS_URL).replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 1000;
    this.ttlSeconds = options.tokenTtlSeconds ?? 21_600;
    this.now = options.now ?? Date.now;
  }

  async poll(): Promise<TerminationNotice | undefined> {
    try {
      let reply = await this.get('/latest/meta-data/spot/instance-action');
      // The token expired or IMDS restarted: one more try with a fresh token.
      if (reply.status === 401) {
        this.token = undefined;
        reply = await this.get('/latest/meta-data/spot/instance-action');
      }
      if (reply.status !== 200 && reply.status !== 404) throw new Error(`spot/instance-action: HTTP ${reply.status}`);
      const notice = reply.status === 404 ? undefined : parseInstanceAction(reply.body);
      this.markReachable(true);
      return notice;
    } catch (err) {
      this.markReachable(false, (err as Error).message);
      return undefined;
    }
  }

  private async get(path: string): Promise<Reply> {
    const token = await this.sessionToken();
    return this.send('GET', path, { 'X-aws-ec2-metadata-token': token });
  }

  private async sessionToken(): Promise<string> {
    // Renewed a minute early, so a token never expires between here and the GET.
    if (this.token && this.token.expiresAt - 60_000 > this.now()) return this.token.value;
    const reply = await this.send('PUT', '/latest/api/token', { 'X-aws-ec2-metadata-token-ttl-seconds': String(this.ttlSeconds) });
    if (reply.status !== 200 || !reply.body) throw new Error(`api/token: HTTP ${reply.status}`);
    this.token = { value: reply.body.trim(), expiresAt: this.now() + this.ttlSeconds * 1000 };
    return this.token.value;
  }

  private send(method: 'GET' | 'PUT', path: string, headers: Record<string, string>): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const req = request(`${this.baseUrl}${path}`, { method, headers, agent: false, signal: AbortSignal.timeout(this.timeoutMs) }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  }

  private markReachable(reachable: boolean, why?: string): void {
    if (this.reachable === reachable) return;
    // The first failure is said once; off EC2 it is the normal state, not worth a line per poll.
    if (!reachable) this.options.log?.(`no termination notices from IMDS at ${this.baseUrl} (${why ?? 'no answer'}); not on EC2?`);
    else if (this.reachable === false) this.options.log?.(`IMDS at ${this.baseUrl} answers again`);
    this.reachable = reachable;
  }
}

/** The body of spot/instance-action: `{action, time}`. Anything else is not a notice we can time. */
export function parseInstanceAction(body: string): TerminationNotice | undefined {
  let parsed: { action?: unknown; time?: unknown };
  try {
    parsed = JSON.parse(body) as typeof parsed;
  } catch {
    throw new Error(`spot/instance-action: not JSON: ${body.slice(0, 100)}`);
  }
  const time = typeof parsed.time === 'string' ? Date.parse(parsed.time) : NaN;
  if (Number.isNaN(time)) throw new Error(`spot/instance-action: no valid "time" in ${body.slice(0, 100)}`);
  const action = typeof parsed.action === 'string' ? parsed.action : 'terminate';
  return { deadline: new Date(time).toISOString(), reason: `spot interruption (${action})` };
}
