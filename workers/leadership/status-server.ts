/**
 * A tiny leader-fenced HTTP endpoint: answers 200 only while the gate says this
 * worker leads. It is how tests and operators see which worker would answer
 * agents; the agent API consults the same gate on every request.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LeadershipGate } from './gate';

export interface StatusServerOptions {
  gate: LeadershipGate;
  shard: string;
  workerId: string;
  /** 0 picks a free port. */
  port: number;
  host?: string;
}

export interface StatusServer {
  /** host:port it listens on. */
  address: string;
  close(): Promise<void>;
}

export async function startStatusServer(options: StatusServerOptions): Promise<StatusServer> {
  const server: Server = createServer((req, res) => {
    const state = options.gate.state;
    const send = (code: number, body: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json', connection: 'close' });
      res.end(`${JSON.stringify(body)}\n`);
    };
    if (req.method !== 'GET') return send(405, { error: 'GET only' });
    if (req.url === '/healthz') return send(200, { workerId: options.workerId, leader: state.leader, epoch: state.epoch ?? null });
    if (req.url !== '/v1/leader') return send(404, { error: 'not found' });
    // Read the gate per request: a leader that lost its lease stops answering at once.
    if (state.leader) return send(200, { shard: options.shard, workerId: options.workerId, epoch: state.epoch, leader: true });
    return send(503, { shard: options.shard, workerId: options.workerId, leader: false, error: 'not the shard leader' });
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    address: `${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
