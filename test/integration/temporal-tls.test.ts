/**
 * The worker's and the CLI's connections over TLS and mTLS, configured the SDK's way (envconfig's
 * TEMPORAL_TLS_* variables). The pinned dev server speaks plaintext only (`server start-dev` has no
 * TLS options), so a TLS terminator in front of it stands in for a self-hosted cluster's frontend:
 * it requires a client certificate from its CA and forwards the bytes (gRPC over HTTP/2) as they are.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect as connectTcp, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer, type Server } from 'node:tls';
import { NativeConnection } from '@temporalio/worker';
import { nativeConnectionOptions, temporalSettingsFromEnv } from '../../adapters/temporal/connection-settings';
import { createCaCertificate, issueCertificate } from '../../adapters/pki/x509';
import { clientEnv, connectClient } from '../../client/connection';
import { stackEnv } from '../support/stack-env';

const dir = mkdtempSync(join(tmpdir(), 'nstance-temporal-tls-'));
let frontend: Server;
let port: number;
const files: Record<string, string> = {};
/** Handshakes the frontend refused (no or an untrusted client certificate). */
const refused: string[] = [];

function pem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }) as string;
}

function save(name: string, text: string): string {
  writeFileSync(join(dir, name), text);
  return (files[name] = join(dir, name));
}

async function issue(caPem: string, caKey: KeyObject, usage: 'client' | 'server', name: string): Promise<{ cert: string; key: string }> {
  const pair = generateKeyPairSync('ed25519');
  const { pem: cert } = await issueCertificate({ caCertPem: caPem, caKey, publicKey: pair.publicKey, commonName: name, usage, dnsNames: [name], ips: usage === 'server' ? ['127.0.0.1'] : [], validityDays: 1 });
  return { cert, key: pem(pair.privateKey) };
}

beforeAll(async () => {
  const caKey = generateKeyPairSync('ed25519').privateKey;
  const caPem = await createCaCertificate(caKey, 'temporal-tls-test');
  const otherCaKey = generateKeyPairSync('ed25519').privateKey;
  const otherCaPem = await createCaCertificate(otherCaKey, 'someone-else');
  save('ca.pem', caPem);
  save('other-ca.pem', otherCaPem);
  const server = await issue(caPem, caKey, 'server', 'temporal.test');
  const client = await issue(caPem, caKey, 'client', 'nstance-worker');
  const stranger = await issue(otherCaPem, otherCaKey, 'client', 'stranger');
  save('client.pem', client.cert);
  save('client.key', client.key);
  save('stranger.pem', stranger.cert);
  save('stranger.key', stranger.key);
  const [host, devPort] = stackEnv().temporalAddress.split(':');
  frontend = createTlsServer({ key: server.key, cert: server.cert, ca: caPem, requestCert: true, rejectUnauthorized: true, ALPNProtocols: ['h2'], minVersion: 'TLSv1.2' }, (socket) => {
    const upstream = connectTcp(Number(devPort), host);
    socket.pipe(upstream).pipe(socket);
    const close = () => (socket.destroy(), upstream.destroy());
    socket.on('error', close);
    upstream.on('error', close);
  });
  frontend.on('tlsClientError', (err) => refused.push(err.message));
  await new Promise<void>((resolve) => frontend.listen(0, '127.0.0.1', resolve));
  port = (frontend.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise((resolve) => frontend?.close(resolve));
});

function tlsEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    TEMPORAL_ADDRESS: `127.0.0.1:${port}`,
    TEMPORAL_NAMESPACE: 'default',
    TEMPORAL_TLS_SERVER_CA_CERT_PATH: files['ca.pem'] as string,
    TEMPORAL_TLS_SERVER_NAME: 'temporal.test',
    TEMPORAL_TLS_CLIENT_CERT_PATH: files['client.pem'] as string,
    TEMPORAL_TLS_CLIENT_KEY_PATH: files['client.key'] as string,
    ...extra,
  };
}

test('the CLI connection (client) and the worker connection (native) reach Temporal over mTLS from TEMPORAL_TLS_* settings', async () => {
  const { client, close } = await connectClient(clientEnv(tlsEnv()));
  try {
    const described = await client.workflowService.describeNamespace({ namespace: 'default' });
    expect(described.namespaceInfo?.name).toBe('default');
  } finally {
    await close();
  }
  const native = await NativeConnection.connect(nativeConnectionOptions(temporalSettingsFromEnv(tlsEnv())));
  try {
    const info = await native.workflowService.getSystemInfo({});
    expect(info.serverVersion).toBeTruthy();
  } finally {
    await native.close();
  }
});

test('without a client certificate, or with one from another CA, the frontend refuses the connection', async () => {
  const before = refused.length;
  const withoutCert = tlsEnv({ TEMPORAL_TLS_CLIENT_CERT_PATH: '', TEMPORAL_TLS_CLIENT_KEY_PATH: '' });
  await expect(connectClient(clientEnv(withoutCert)).then(async (c) => c.client.workflowService.describeNamespace({ namespace: 'default' }).finally(c.close))).rejects.toThrow();
  const stranger = tlsEnv({ TEMPORAL_TLS_CLIENT_CERT_PATH: files['stranger.pem'] as string, TEMPORAL_TLS_CLIENT_KEY_PATH: files['stranger.key'] as string });
  await expect(NativeConnection.connect(nativeConnectionOptions(temporalSettingsFromEnv(stranger)))).rejects.toThrow();
  expect(refused.length).toBeGreaterThan(before);
});

test('a server certificate from a CA the settings do not trust is refused by the client', async () => {
  const wrongCa = tlsEnv({ TEMPORAL_TLS_SERVER_CA_CERT_PATH: files['other-ca.pem'] as string });
  await expect(NativeConnection.connect(nativeConnectionOptions(temporalSettingsFromEnv(wrongCa)))).rejects.toThrow();
});
