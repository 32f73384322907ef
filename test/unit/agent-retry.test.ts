/**
 * The agent's behaviour towards a busy agent API: backoff with jitter that honours
 * Retry-After, reports spread over the interval, and one kept-alive connection for the
 * requests that follow each other (a fake HTTPS server on loopback answers 503 first).
 */
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, AgentRequestError, jitteredIntervalMs, retryDelayMs, RETRY_MAX_MS } from '../../client/agent/agent';
import { createCaCertificate, issueCertificate } from '../../adapters/pki/x509';

describe('retryDelayMs', () => {
  test('grows exponentially up to a cap, with its upper half random', () => {
    const low = [1, 2, 3, 4, 10].map((a) => retryDelayMs(a, new Error('x'), () => 0));
    const high = [1, 2, 3, 4, 10].map((a) => retryDelayMs(a, new Error('x'), () => 1));
    expect(low).toEqual([500, 1000, 2000, 4000, RETRY_MAX_MS / 2]);
    expect(high).toEqual([1000, 2000, 4000, 8000, RETRY_MAX_MS]);
  });

  test("adds the server's Retry-After, so a fleet turned away together comes back spread out", () => {
    const busy = new AgentRequestError(503, 'busy', 'busy', 3000);
    expect(retryDelayMs(1, busy, () => 0)).toBe(3500);
    expect(retryDelayMs(1, busy, () => 1)).toBe(4000);
  });

  test('health intervals vary by ±10%', () => {
    expect([jitteredIntervalMs(60_000, () => 0), jitteredIntervalMs(60_000, () => 1)]).toEqual([54_000, 66_000]);
  });
});

describe('an agent against a busy API', () => {
  let server: Server;
  let connections = 0;
  const requests: { path: string; at: number; client: boolean }[] = [];
  let caPem: string;
  let busyAnswers = 2;

  beforeAll(async () => {
    const caKey = generateKeyPairSync('ed25519').privateKey;
    caPem = await createCaCertificate(caKey, 'retry');
    const serverKey = generateKeyPairSync('ed25519');
    const serverCert = await issueCertificate({ caCertPem: caPem, caKey, publicKey: serverKey.publicKey, commonName: 'api', usage: 'server', dnsNames: ['localhost'], validityDays: 1 });
    server = createServer(
      { key: serverKey.privateKey.export({ type: 'pkcs8', format: 'pem' }), cert: serverCert.pem, ca: caPem, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.3' },
      (req, res) => {
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => {
          requests.push({ path: req.url ?? '', at: Date.now(), client: Object.keys((req.socket as import('node:tls').TLSSocket).getPeerCertificate()).length > 0 });
          const send = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
            res.writeHead(status, { 'content-type': 'application/json', ...headers });
            res.end(JSON.stringify(payload));
          };
          if (req.url === '/v1/register') {
            if (busyAnswers-- > 0) return send(503, { error: 'busy', message: 'busy' }, { 'retry-after': '1' });
            const { publicKey } = JSON.parse(body) as { publicKey: string };
            void issueCertificate({ caCertPem: caPem, caKey, publicKey: createPublicKey(publicKey), commonName: 'web-1', usage: 'client', validityDays: 1 }).then((c) =>
              send(200, { instanceId: 'web-1', certificate: c.pem, caCertificate: caPem, serialNumber: c.serialNumber, healthCheckIntervalMs: 60_000 }),
            );
            return;
          }
          if (req.url === '/v1/files') return send(200, { files: [] });
          return send(200, { ok: true });
        });
      },
    );
    server.on('secureConnection', () => connections++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(() => r(undefined)));
  });

  test('it waits at least Retry-After between attempts, then registers, fetches files and reports over two kept-alive connections', async () => {
    const port = (server.address() as AddressInfo).port;
    const agent = new Agent({ registerAddress: `localhost:${port}`, connectAddress: `127.0.0.1:${port}`, nonce: 'n', caPem, stateDir: mkdtempSync(join(tmpdir(), 'nstance-retry-')) });
    agent.start();
    try {
      const deadline = Date.now() + 20_000;
      while (!requests.some((r) => r.path === '/v1/health') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const registers = requests.filter((r) => r.path === '/v1/register');
      expect(registers).toHaveLength(3);
      // Retry-After: 1 plus the backoff's fixed half (500 ms, then 1000 ms).
      expect(registers[1].at - registers[0].at).toBeGreaterThanOrEqual(1500);
      expect(registers[2].at - registers[1].at).toBeGreaterThanOrEqual(2000);
      expect(requests.map((r) => r.path)).toEqual(['/v1/register', '/v1/register', '/v1/register', '/v1/files', '/v1/health']);
      // One connection without a client certificate (the three registration attempts), one with it (files, health).
      expect(connections).toBe(2);
      expect(requests.map((r) => r.client)).toEqual([false, false, false, true, true]);
    } finally {
      agent.stop();
    }
  });
});
