/**
 * A stand-in for the EC2 instance metadata service, IMDSv2 only, on loopback. One
 * server plays many instances: each has its own path prefix (an agent's IMDS URL is
 * `url(prefix)`). It serves what the agent reads: a session token, and
 * spot/instance-action (404 until a notice is set), and records every request.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ImdsRequest {
  prefix: string;
  method: string;
  path: string;
  /** The session token sent with a GET (IMDSv2); undefined for IMDSv1-style requests. */
  token?: string;
  status: number;
}

export interface InstanceAction {
  action: 'terminate' | 'stop' | 'hibernate';
  time: string;
}

export class FakeImds {
  readonly requests: ImdsRequest[] = [];
  private readonly actions = new Map<string, InstanceAction>();
  private readonly stalled = new Set<string>();
  private readonly tokens = new Set<string>();
  private server: Server | undefined;

  async start(): Promise<this> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    return this;
  }

  /** The base URL an agent of `prefix` uses (no prefix: the server's root). */
  url(prefix = ''): string {
    const port = (this.server?.address() as AddressInfo | null)?.port;
    if (!port) throw new Error('fake IMDS not started');
    return `http://127.0.0.1:${port}${prefix ? `/${prefix}` : ''}`;
  }

  /** From now on spot/instance-action answers this (undefined: 404 again). */
  setInstanceAction(prefix: string, action: InstanceAction | undefined): void {
    if (action) this.actions.set(prefix, action);
    else this.actions.delete(prefix);
  }

  /** Requests under `prefix` are accepted and never answered (a hung IMDS). */
  stall(prefix: string): void {
    this.stalled.add(prefix);
  }

  /** Every token issued so far stops working (as when it expires): GETs get 401. */
  expireTokens(): void {
    this.tokens.clear();
  }

  requestsOf(prefix: string): ImdsRequest[] {
    return this.requests.filter((r) => r.prefix === prefix);
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    this.server = undefined;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    const match = /^\/(?:([^/]+)\/)?(latest\/.*)$/.exec(url);
    const prefix = match?.[1] ?? '';
    const path = `/${match?.[2] ?? url.replace(/^\//, '')}`;
    if (this.stalled.has(prefix)) return;
    const token = req.headers['x-aws-ec2-metadata-token'];
    const record: ImdsRequest = { prefix, method: req.method ?? '', path, token: typeof token === 'string' ? token : undefined, status: 0 };
    this.requests.push(record);
    const reply = (status: number, body: string, type = 'text/plain') => {
      record.status = status;
      res.writeHead(status, { 'content-type': type }).end(body);
    };
    if (req.method === 'PUT' && path === '/latest/api/token') {
      const ttl = Number(req.headers['x-aws-ec2-metadata-token-ttl-seconds']);
      if (!Number.isInteger(ttl) || ttl < 1 || ttl > 21_600) return reply(400, 'Bad Request');
      const issued = randomUUID();
      this.tokens.add(issued);
      return reply(200, issued);
    }
    if (req.method !== 'GET') return reply(405, 'Method Not Allowed');
    // IMDSv2 only (HttpTokens=required), as Nstance launches its instances.
    if (!record.token || !this.tokens.has(record.token)) return reply(401, 'Unauthorized');
    if (path !== '/latest/meta-data/spot/instance-action') return reply(404, 'Not Found');
    const action = this.actions.get(prefix);
    return action ? reply(200, JSON.stringify(action), 'application/json') : reply(404, 'Not Found');
  }
}
