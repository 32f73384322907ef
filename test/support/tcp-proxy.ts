/**
 * A TCP forwarder that can be partitioned: traffic silently stops flowing in
 * both directions (no RST, like a network partition) while the process at
 * either end stays alive. Heal() drops the broken connections so clients
 * reconnect cleanly.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export class PartitionableTcpProxy {
  private server?: Server;
  private pairs = new Set<[Socket, Socket]>();
  private partitioned = false;
  address = '';

  constructor(private target: { host: string; port: number }) {}

  static forAddress(hostPort: string): PartitionableTcpProxy {
    const [host, port] = hostPort.split(':');
    return new PartitionableTcpProxy({ host: host ?? '127.0.0.1', port: Number(port) });
  }

  async start(): Promise<string> {
    this.server = createServer((client) => {
      const upstream = createConnection(this.target);
      const pair: [Socket, Socket] = [client, upstream];
      this.pairs.add(pair);
      const pipe = (from: Socket, to: Socket) =>
        from.on('data', (chunk) => {
          // Dropped, not refused: the peer sees silence, as in a real partition.
          if (!this.partitioned) to.write(chunk);
        });
      pipe(client, upstream);
      pipe(upstream, client);
      const close = () => {
        client.destroy();
        upstream.destroy();
        this.pairs.delete(pair);
      };
      client.on('error', close).on('close', close);
      upstream.on('error', close).on('close', close);
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', () => resolve()));
    this.address = `127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.address;
  }

  partition(): void {
    this.partitioned = true;
  }

  /** New connections go to `hostPort` from now on; the open ones are dropped (their clients reconnect there). */
  retarget(hostPort: string): void {
    const [host, port] = hostPort.split(':');
    this.target = { host: host ?? '127.0.0.1', port: Number(port) };
    this.heal();
  }

  heal(): void {
    this.partitioned = false;
    for (const [a, b] of this.pairs) {
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
  }

  async close(): Promise<void> {
    this.heal();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
