/**
 * The agent's HTTPS client: JSON over TLS 1.3, pinning the cluster CA, checking that the server
 * certificate names the registration host, with the agent's client certificate once registered.
 */
import { Agent as HttpsAgent, request, type RequestOptions } from 'node:https';
import { checkServerIdentity, createSecureContext, type PeerCertificate, type SecureContext } from 'node:tls';
import { AgentRequestError, parseRetryAfter } from './retry';
import type { AgentState } from './state';
import { splitAddress } from './userdata';

export interface TransportOptions {
  registerAddress: string;
  connectAddress?: string;
  localAddress?: string;
  observe?: (done: { method: string; path: string; status: number; ms: number }) => void;
}

export class AgentTransport {
  /**
   * Connections are kept alive between the requests that follow each other (register, files,
   * health; a retry): each new one costs both sides a TLS handshake. Node closes an idle one
   * just before the server's keep-alive hint runs out, so a 60 s interval reconnects.
   */
  private readonly connections = new HttpsAgent({ keepAlive: true, maxSockets: 2 });
  /** Building a TLS context parses the key and certificates: done once per identity, not per connection. */
  private context: { id: string; context: SecureContext } | undefined;

  constructor(private readonly options: TransportOptions) {}

  destroy(): void {
    this.connections.destroy();
  }

  private secureContext(ca: string | undefined, identity: AgentState | undefined): SecureContext {
    const id = `${ca ?? ''}\u0000${identity?.certPem ?? ''}`;
    if (this.context?.id !== id) {
      this.context = { id, context: createSecureContext({ ca, minVersion: 'TLSv1.3', ...(identity ? { key: identity.keyPem, cert: identity.certPem } : {}) }) };
    }
    return this.context.context;
  }

  /** One JSON request over TLS 1.3, pinning `ca` and checking the server names the registration host. */
  call(method: string, path: string, body: unknown, ca: string | undefined, identity?: AgentState): Promise<unknown> {
    const { host, port } = splitAddress(this.options.connectAddress ?? this.options.registerAddress);
    const expectedHost = splitAddress(this.options.registerAddress).host;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const began = performance.now();
    const observe = this.options.observe;
    const answered = new Promise<unknown>((resolve, reject) => {
      // tls.connect takes secureContext; the https request options type does not list it.
      const options: RequestOptions & { secureContext: SecureContext } = {
        host,
        port,
        ...(this.options.localAddress ? { localAddress: this.options.localAddress } : {}),
        method,
        path,
        // ca/key/cert also name the connection pool, so a connection without the client certificate is never reused with it.
        ca,
        ...(identity ? { key: identity.keyPem, cert: identity.certPem } : {}),
        secureContext: this.secureContext(ca, identity),
        minVersion: 'TLSv1.3',
        agent: this.connections,
        timeout: 15_000,
        checkServerIdentity: (_host: string, cert: PeerCertificate) => checkServerIdentity(expectedHost, cert),
        headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {},
      };
      const req = request(
        options,
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: { error?: string; message?: string } = {};
            try {
              parsed = JSON.parse(text) as typeof parsed;
            } catch {
              // Not JSON: reported below with the status.
            }
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) resolve(parsed);
            else reject(new AgentRequestError(status, parsed.error ?? 'http-error', `${method} ${path}: ${status} ${parsed.message ?? text.slice(0, 200)}`, parseRetryAfter(res.headers['retry-after'])));
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out`)));
      req.on('error', (err) => reject(err instanceof AgentRequestError ? err : new AgentRequestError(0, 'network', `${method} ${path}: ${err.message}`)));
      req.end(payload);
    });
    if (!observe) return answered;
    const report = (status: number) => observe({ method, path, status, ms: performance.now() - began });
    return answered.then(
      (out) => (report(200), out),
      (err: unknown) => {
        report(err instanceof AgentRequestError ? err.status : 0);
        throw err;
      },
    );
  }
}
