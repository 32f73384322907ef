/**
 * The agent API at load, on the real dev server and moto (the harness's fault layer
 * records every AWS call): concurrent launches and registrations read config.jsonc once
 * and list secrets once per TTL, a registration writes three objects, and hostile floods
 * of bad nonces and bad certificates write a bounded number of audit objects, most of
 * them answered 429 before anything is read.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { Agent as HttpsAgent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager';
import { Agent } from '../../client/agent/agent';
import { instanceWorkflowId, s3Keys } from '../../common/names';
import type { AuditEntry } from '../../common/types';
import { DEFAULT_CONFIG_TTL_MS } from '../../adapters/s3/config-cache';
import { mintNonce } from '../../adapters/pki/nonce';
import { createCaCertificate, issueCertificate } from '../../adapters/pki/x509';
import { DEFAULT_SECRET_FILES_TTL_MS } from '../../workers/agent-api/secret-files';
import { standInCountsQuery } from '../../bench/agent-api/standin-workflow';
import { standConfigText, startStand, type Stand } from '../../bench/agent-api/stand';
import { parseConfigText } from '../../common/config';
import { proveCallsAllowed } from '../support/iam-proof';
import { listKeys, readJson } from '../support/emulator';
import { createHarness, type Harness } from '../support/harness';
import { stackEnv } from '../support/stack-env';

const shard = `aps-${Date.now().toString(36)}`;
const prefix = `nstance/${shard}/`;
let h: Harness;
let stand: Stand;
let startedAt: number;

beforeAll(async () => {
  startedAt = Date.now();
  h = await createHarness({ shard, bucket: `nstance-${shard}` });
  await h.aws.secrets.send(new CreateSecretCommand({ Name: `${prefix}files/default/web/etc/app/token`, SecretString: 't0k3n' }));
  stand = await startStand({ client: h.client, temporalAddress: stackEnv().temporalAddress, aws: h.workerAws, bucket: h.bucket, shard });
});

afterAll(async () => {
  await stand?.stop();
  await h?.close();
  // The IAM proof: every AWS call of the agent API at load (the test's own seeding of a secret file is under the prefix too).
  if (stand && process.env.NSTANCE_IAM_PROOF !== 'off') await proveCallsAllowed(h.faults.calls, [parseConfigText(standConfigText(shard, h.bucket), 'config.jsonc')]);
});

const configGets = () => h.faults.callsOf('GetObject').filter((c) => c.input.Key === s3Keys.config(shard));
const putsUnder = (part: string) => h.faults.callsOf('PutObject').filter((c) => String(c.input.Key).startsWith(`shard/${shard}/${part}`));

async function auditEntries(): Promise<AuditEntry[]> {
  const keys = await listKeys(h.aws.s3, h.bucket, s3Keys.auditPrefix(shard));
  return Promise.all(keys.map((k) => readJson<AuditEntry>(h.aws.s3, h.bucket, k)));
}

test('100 concurrent launches and registrations read config.jsonc once, list secrets once, and write three objects per registration', async () => {
  const ids = Array.from({ length: 100 }, (_, i) => `web-${String(i).padStart(12, '0')}`);
  await stand.startInstances(ids);
  // The launch activity's seam, a hundred at once: each mints its nonce from the cached config and PKI.
  const materials = await Promise.all(ids.map((id) => stand.mintNonce(id)));
  const agents = materials.map(
    (m, i) => new Agent({ registerAddress: stand.address, nonce: m.nonce, caPem: m.caCertificate, stateDir: mkdtempSync(join(tmpdir(), `nstance-aps-${i}-`)) }),
  );
  try {
    await Promise.all(agents.map((a) => a.register()));
    const files = await Promise.all(agents.map((a) => a.fetchFiles()));
    await Promise.all(agents.map((a) => a.reportHealth()));
    expect(files.every((f) => f.some((file) => file.path === '/etc/app/token' && file.content === 't0k3n'))).toBe(true);
  } finally {
    agents.forEach((a) => a.stop());
  }
  const elapsed = Date.now() - startedAt;

  // One download for the whole run; at most one conditional revalidation (304) per TTL besides.
  const gets = configGets();
  expect(gets.filter((c) => c.outcome === 'ok')).toHaveLength(1);
  expect(gets.length).toBeLessThanOrEqual(2 + Math.ceil(elapsed / DEFAULT_CONFIG_TTL_MS));
  // Secrets Manager: the PKI once (create, then read), the group's files once per TTL; nothing per launch or request.
  const secretCalls = (name: string) => h.faults.callsOf(name).length;
  expect(secretCalls('ListSecrets')).toBeLessThanOrEqual(1 + Math.floor(elapsed / DEFAULT_SECRET_FILES_TTL_MS));
  expect(secretCalls('GetSecretValue')).toBeLessThanOrEqual(2 * 2 + 1 + Math.floor(elapsed / DEFAULT_SECRET_FILES_TTL_MS));
  // Per registration: the spent nonce (holding the certificate), the certificate log, the audit entry.
  expect(putsUnder('nonce/')).toHaveLength(100);
  expect(putsUnder('certlog/default.')).toHaveLength(100);
  expect(putsUnder('audit/')).toHaveLength(100);
  expect(h.faults.callsOf('GetObject').filter((c) => String(c.input.Key).includes('/nonce/'))).toEqual([]);
  // Each instance workflow heard of its registration once.
  const counts = await Promise.all(ids.slice(0, 5).map((id) => h.client.workflow.getHandle(instanceWorkflowId(shard, id)).query(standInCountsQuery)));
  expect(counts.map((c) => c.registrations)).toEqual([1, 1, 1, 1, 1]);
});

/** One request, over a kept-alive connection from `agent`; resolves with the status. */
function send(agent: HttpsAgent, method: 'GET' | 'POST', path: string, body?: string): Promise<number> {
  const [host, port] = stand.address.split(':');
  return new Promise((resolve, reject) => {
    const req = request({ host, port: Number(port), method, path, agent, minVersion: 'TLSv1.3', headers: { 'content-type': 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('hostile registration floods write a bounded number of audit objects; most are answered 429, and agents elsewhere still register', async () => {
  const caPem = (await stand.mintNonce('web-000000000000')).caCertificate;
  const forger = generateKeyPairSync('ed25519').privateKey;
  const rogueCa = generateKeyPairSync('ed25519').privateKey;
  const rogueCaPem = await createCaCertificate(rogueCa, 'test');
  const rogueKey = generateKeyPairSync('ed25519');
  const rogueCert = await issueCertificate({ caCertPem: rogueCaPem, caKey: rogueCa, publicKey: rogueKey.publicKey, commonName: 'web-000000000001', usage: 'client', uris: [`nstance://test/${shard}/default/web/web-000000000001`], validityDays: 1 });
  const publicKey = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }) as string;
  const badNonce = (i: number) =>
    JSON.stringify({ nonce: mintNonce(forger, { cluster: 'test', shard, tenant: 'default', group: 'web', instanceId: `web-${String(i).padStart(12, '0')}` }, 60_000).token, publicKey });

  const remotes = Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 2}`);
  const perRemote = 250;
  const tally = new Map<number, number>();
  const putsBefore = h.faults.callsOf('PutObject').length;
  const auditBefore = (await auditEntries()).length;
  const lanes = remotes.map(async (localAddress, r) => {
    const plain = new HttpsAgent({ keepAlive: true, maxSockets: 2, localAddress, ca: caPem });
    const forged = new HttpsAgent({ keepAlive: true, maxSockets: 2, localAddress, ca: caPem, key: rogueKey.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, cert: rogueCert.pem });
    try {
      for (let i = 0; i < perRemote; i++) {
        const status = await (i % 2 === 0 ? send(plain, 'POST', '/v1/register', badNonce(r * perRemote + i)) : send(forged, 'POST', '/v1/health', JSON.stringify({ instanceId: 'web-000000000001' })));
        tally.set(status, (tally.get(status) ?? 0) + 1);
      }
    } finally {
      plain.destroy();
      forged.destroy();
    }
  });
  // Meanwhile a real agent on another address registers.
  await stand.startInstances(['web-legit0000001']);
  const legit = await stand.mintNonce('web-legit0000001');
  const agent = new Agent({ registerAddress: stand.address, nonce: legit.nonce, caPem: legit.caCertificate, stateDir: mkdtempSync(join(tmpdir(), 'nstance-aps-legit-')) });
  const [registered] = await Promise.all([agent.register(), ...lanes]);
  agent.stop();
  expect(registered.identity.instanceId).toBe('web-legit0000001');

  const total = remotes.length * perRemote;
  const limited = tally.get(429) ?? 0;
  const refused = (tally.get(401) ?? 0) + (tally.get(400) ?? 0);
  expect(limited + refused).toBe(total);
  // Each remote gets its burst (20) and what it earns back (0.2/s) before every request is 429.
  expect(limited).toBeGreaterThanOrEqual(0.85 * total);
  // Nothing was written for all of that but the real agent's registration (3 objects)...
  expect(h.faults.callsOf('PutObject').length - putsBefore).toBe(3);
  // ...until the window's summaries: one per (action, reason), holding every count.
  await stand.api.context.rejections.flush();
  const written = await auditEntries();
  const summaries = written.filter((e) => e.details?.summary === true);
  expect(written.length - auditBefore).toBeLessThanOrEqual(1 + 3);
  expect(summaries.map((e) => `${e.action} ${e.details?.reason}`).sort()).toEqual([
    'agent.auth.rejected client-certificate-untrusted',
    'agent.rate-limited too-many-rejections',
    'agent.register.rejected nonce-bad-signature',
  ]);
  const count = (action: string) => summaries.filter((e) => e.action === action).reduce((n, e) => n + Number(e.details?.count), 0);
  expect(count('agent.rate-limited')).toBe(limited);
  expect(count('agent.register.rejected') + count('agent.auth.rejected')).toBe(refused);
  expect(summaries.every((e) => (e.details?.remotes as string[]).length <= 20 && (e.details?.samples as unknown[]).length <= 5)).toBe(true);
});
