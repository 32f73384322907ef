/**
 * A template's `files` reach the instance through the real agent: object-storage secrets (key
 * from env), a storage object, env, json and string files rendered with the instance's values,
 * written atomically with their modes, and certificate files issued by the cluster CA (a key made
 * on the server and delivered, and one made on the agent that never leaves it). A changed secret
 * reaches the running instance without replacing it; a changed var and a certificate near expiry
 * reach it through the health report's answer, before its periodic fetch; the health report
 * carries the digest of the files the agent holds and the server sees which are stale.
 */
import { createHash, createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { SimulatedFleet } from '../../client/agent/fleet';
import { applyConfig } from '../../client/ops/apply';
import { getSecret, openSecrets, putSecret } from '../../client/ops/secrets';
import { readClusterCa } from '../../client/agent/fleet-start';
import { mintNonce } from '../../adapters/pki/nonce';
import { runCli } from '../support/cli';
import { MutableLeadershipGate } from '../../workers/leadership/gate';
import { eventually } from '../support/emulator';
import { listKeys, readJson } from '../support/emulator';
import { configText, seedShard, terminateShardWorkflows, testConfig } from '../support/fixtures';
import { createHarness, type Harness } from '../support/harness';
import { startAgentApiWorker, type AgentApiWorker } from '../support/agent-api-worker';
import type { CertLogEntry } from '../../adapters/pki/certlog';
import type { FileStatus } from '../../workers/agent-api/file-reports';
import { parseConfigText, type NstanceConfig } from '../../common/config';
import { proveCallsAllowed } from '../support/iam-proof';
import { stackEnv } from '../support/stack-env';
import { PartitionableTcpProxy } from '../support/tcp-proxy';
import { recordSecretValue, testSecretsKey } from '../support/secret-ledger';
import type { CertificateFileRecord } from '../../workers/agent-api/certificate-file-records';
import { s3Keys } from '../../common/names';

const shard = `fil-${Date.now().toString(36)}`;
const KEY_VAR = `NSTANCE_TEST_FILES_KEY_${shard.toUpperCase().replace(/-/g, '_')}`;
const USERDATA = '#!/bin/bash\n/opt/nstance/agent --register {{ .Server.RegistrationAddr }} --nonce {{ .Nonce }}\n';
let h: Harness;
let fleet: SimulatedFleet;
let stateRoot: string;
let worker: AgentApiWorker;
let leaderAddress: PartitionableTcpProxy;
let seed: Awaited<ReturnType<typeof seedShard>>;
let config: ReturnType<typeof filesConfig>;
/** How far ahead of the real clock the agent API issues certificate files (moved on to see a reissue). */
let certificateClockAheadMs = 0;
const gate = new MutableLeadershipGate();
const CERTIFICATES = {
  ca: { cn: 'files test {{ .Cluster.ID }} CA', organization: ['files test'], country: ['AU'] },
  'web-server': {
    kind: 'server',
    cn: '{{ .Instance.ID }}',
    dns: ['{{ .Instance.ID }}.{{ .Vars.Tier }}.internal'],
    ip: ['127.0.0.1'],
    uri: ['spiffe://{{ .Cluster.ID }}/{{ .Tenant }}/{{ .Group }}'],
    organization: ['{{ .Tenant }}'],
    ttl: 24,
  },
  'web-client': { kind: 'client', cn: '{{ .Instance.ID }}', ttl: '3h' },
};

function filesConfig(seed: Awaited<ReturnType<typeof seedShard>>, tier: string) {
  const c = testConfig(seed, { shard, bucket: h.bucket, size: 1, web: { vars: { Tier: tier } } }) as {
    cluster: Record<string, unknown>;
    certificates?: unknown;
    templates: { web: Record<string, unknown> & { userdata: { content: string } } };
  };
  c.cluster.secrets = { provider: 'object-storage', encryption_key: { provider: 'env', source: KEY_VAR }, cache_ttl: '1s' };
  c.templates.web.userdata.content = USERDATA;
  c.templates.web.files = {
    '/etc/app/token': { kind: 'secret', source: 'app/{{ .Tenant }}/{{ .Group }}/token' },
    '/etc/app/motd': { kind: 'storage', source: 'files/motd-{{ .Vars.Environment }}.txt', mode: '0644' },
    '/etc/app/app.env': { kind: 'env', template: { INSTANCE: '{{ .Instance.ID }}', ENVIRONMENT: '{{ .Vars.Environment }}' } },
    '/etc/app/app.json': { kind: 'json', template: { group: '{{ .Tenant }}/{{ .Group }}', replicas: 3 } },
    '/etc/app/hello': { kind: 'string', template: 'hello from {{ .Instance.ID }}\n', mode: '0640' },
    '/etc/app/tier': { kind: 'string', template: '{{ .Vars.Tier }}\n' },
    '/etc/app/tls': { kind: 'certificate', template: 'web-server' },
    '/etc/app/client': { kind: 'certificate', template: 'web-client', key: { source: 'agent' } },
  };
  c.certificates = CERTIFICATES;
  return c;
}

const applied: NstanceConfig[] = [];
async function apply(c: ReturnType<typeof filesConfig>): Promise<void> {
  const text = configText(c);
  await applyConfig({ client: h.client, s3: h.aws.s3, text, file: 'config.jsonc', actor: 'test' });
  applied.push(parseConfigText(text, 'config.jsonc'));
}

const sha256 = (der: Buffer) => createHash('sha256').update(der).digest('hex');
const jwk = (key: ReturnType<typeof createPublicKey>) => key.export({ format: 'jwk' });

beforeAll(async () => {
  testSecretsKey(KEY_VAR);
  h = await createHarness({ shard, bucket: `nstance-${shard}` });
  seed = await seedShard(h);
  config = filesConfig(seed, 'blue');
  await apply(config);
  const opened = await openSecrets({ aws: h.aws, bucket: h.bucket, shard, actor: 'test' });
  // Overwritten below: recorded, so the history scan still looks for it.
  await putSecret(opened, 'app/default/web/token', recordSecretValue('agent-files: the first token', 'first-token'));
  // The operator's upload, not the worker's: outside the fault layer, so the IAM proof does not judge it.
  const operator = new S3Client({ region: stackEnv().region, endpoint: stackEnv().awsEndpoint, forcePathStyle: true });
  await operator.send(new PutObjectCommand({ Bucket: h.bucket, Key: 'files/motd-test.txt', Body: 'welcome' })).finally(() => operator.destroy());
  gate.set({ leader: true, epoch: 1 });
  worker = await startAgentApiWorker(h, gate, { certificateFilesNow: () => Date.now() + certificateClockAheadMs });
  // The leader network address, as agents see it: moved to another worker at a leader change.
  leaderAddress = PartitionableTcpProxy.forAddress(worker.address);
  await leaderAddress.start();
  stateRoot = mkdtempSync(join(tmpdir(), 'nstance-files-fleet-'));
  // Reports every second, periodic fetches almost never: what arrives without a manual fetch was pushed.
  fleet = new SimulatedFleet({ ec2: h.aws.ec2, shard, resolveAddress: () => leaderAddress.address, stateRoot, pollMs: 300, healthIntervalMs: 1000, filesEvery: 100_000 }).start();
});

afterAll(async () => {
  await fleet?.stop();
  await leaderAddress?.close();
  await terminateShardWorkflows(h.client, shard);
  // Every AWS call made here (the agent API's reads of storage files, secrets, the CA, the certificate log)
  // is allowed by the policy `nstance iam policy` generates for the configs applied.
  if (applied.length > 0 && process.env.NSTANCE_IAM_PROOF !== 'off') await proveCallsAllowed(h.faults.calls, applied);
  await h.close();
  delete process.env[KEY_VAR];
});

test('every non-certificate kind arrives rendered for the instance, with its mode; a changed secret is pushed, without replacement', async () => {
  await eventually('1 registered agent', async () => (fleet.registered().length === 1 ? true : undefined), 90_000);
  const [member] = [...fleet.members.values()];
  const root = join(stateRoot, member.ec2InstanceId, 'files');
  const file = (path: string) => join(root, path);
  await member.agent.fetchFiles();

  expect(readFileSync(file('etc/app/token'), 'utf8')).toBe('first-token');
  expect(statSync(file('etc/app/token')).mode & 0o777).toBe(0o600);
  expect(readFileSync(file('etc/app/motd'), 'utf8')).toBe('welcome');
  expect(statSync(file('etc/app/motd')).mode & 0o777).toBe(0o644);
  expect(readFileSync(file('etc/app/app.env'), 'utf8')).toBe(`ENVIRONMENT=test\nINSTANCE=${member.instanceId}\n`);
  expect(JSON.parse(readFileSync(file('etc/app/app.json'), 'utf8'))).toEqual({ group: 'default/web', replicas: 3 });
  expect(readFileSync(file('etc/app/hello'), 'utf8')).toBe(`hello from ${member.instanceId}\n`);
  expect(statSync(file('etc/app/hello')).mode & 0o777).toBe(0o640);
  expect(readFileSync(file('etc/nstance/ca.crt'), 'utf8')).toContain('BEGIN CERTIFICATE');

  // The secret changes (cache_ttl 1s): the same instance gets the new value without fetching by hand (periodic
  // fetches are every 100,000 reports here), because a health report's answer says its files changed.
  const pushedBefore = member.agent.pushedFetches;
  await putSecret(await openSecrets({ aws: h.aws, bucket: h.bucket, shard, actor: 'test' }), 'app/default/web/token', 'second-token');
  await eventually('the new token on the instance', async () => (readFileSync(file('etc/app/token'), 'utf8') === 'second-token' ? true : undefined), 30_000, 250);
  expect(member.agent.pushedFetches).toBeGreaterThan(pushedBefore);
  expect(fleet.registered()).toEqual([member.instanceId]);
});

const only = () => {
  const [member] = [...fleet.members.values()];
  const root = join(stateRoot, member.ec2InstanceId, 'files');
  return { member, root, file: (path: string) => join(root, path) };
};
const certificateAt = (path: string) => new X509Certificate(readFileSync(path, 'utf8'));
/** Until the instance's last health report, as this agent API saw it, holds exactly what it delivers. */
const holdsWhatIsDelivered = (api: AgentApiWorker, instanceId: string, what: string, withinMs = 20_000) =>
  eventually(what, async () => {
    const status = api.api.context.fileReports.get(instanceId);
    return status && status.agentHash === status.expectedHash && status.pendingCertificates.length === 0 ? status : undefined;
  }, withinMs, 250);

test('certificate files are issued by the cluster CA: SANs, EKU, validity; the agent-made key never leaves the agent', async () => {
  const { member, file } = only();
  await eventually('both certificate files on the instance', async () => {
    try {
      return statSync(file('etc/app/tls.crt')) && statSync(file('etc/app/client.crt')) ? true : undefined;
    } catch {
      return undefined;
    }
  }, 30_000, 250);
  const ca = certificateAt(file('etc/nstance/ca.crt'));
  // certificates.ca made the CA (it did not exist before this config).
  const clusterId = String((config.cluster as { id: string }).id);
  expect(ca.subject.split('\n')).toEqual([`CN=files test ${clusterId} CA`, 'O=files test', 'C=AU']);

  const server = certificateAt(file('etc/app/tls.crt'));
  expect(server.checkIssued(ca)).toBe(true);
  expect(server.verify(ca.publicKey)).toBe(true);
  expect(server.subject.split('\n')).toEqual([`CN=${member.instanceId}`, 'O=default']);
  expect(server.subjectAltName).toBe(`DNS:${member.instanceId}.blue.internal, IP Address:127.0.0.1, URI:spiffe://${clusterId}/default/web`);
  expect(server.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
  const lifetime = Date.parse(server.validTo) - Date.parse(server.validFrom);
  expect(lifetime).toBe(24 * 3600_000 + 5 * 60_000); // ttl 24 h, backdated 5 min for clock skew
  expect(Math.abs(Date.parse(server.validTo) - (Date.now() + 24 * 3600_000))).toBeLessThan(120_000);
  // A key made on the server is delivered beside it, owner-only, and is the certificate's.
  expect(statSync(file('etc/app/tls.key')).mode & 0o777).toBe(0o600);
  expect(jwk(createPublicKey(readFileSync(file('etc/app/tls.key'), 'utf8')))).toEqual(jwk(server.publicKey));

  const client = certificateAt(file('etc/app/client.crt'));
  expect(client.verify(ca.publicKey)).toBe(true);
  expect(client.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
  expect(Date.parse(client.validTo) - Date.parse(client.validFrom)).toBe(3 * 3600_000 + 5 * 60_000);
  const agentKey = createPrivateKey(readFileSync(file('etc/app/client.key'), 'utf8'));
  expect(statSync(file('etc/app/client.key')).mode & 0o777).toBe(0o600);
  expect(jwk(client.publicKey)).toEqual(jwk(createPublicKey(agentKey)));
  expect(readFileSync(file('etc/app/client.pub'), 'utf8')).toBe(createPublicKey(agentKey).export({ type: 'spki', format: 'pem' }));
  // Nothing the agent API sends holds that private key: /v1/files carries no file at its path, and no private key but the server-made one.
  const agentKeyPem = agentKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const delivered = await member.agent.fetchFiles();
  expect(delivered.map((f) => f.path)).not.toContain('/etc/app/client.key');
  expect(delivered.filter((f) => f.content.includes('PRIVATE KEY')).map((f) => f.path)).toEqual(['/etc/app/tls.key']);
  expect(delivered.some((f) => f.content.includes(agentKeyPem.split('\n')[1]))).toBe(false);
  // The certificate log holds both issues, for those public keys.
  const logged = await Promise.all((await listKeys(h.aws.s3, h.bucket, `shard/${shard}/certlog/`)).map((k) => readJson<CertLogEntry>(h.aws.s3, h.bucket, k)));
  const forFile = (path: string) => logged.filter((e) => e.kind === 'instance-file' && e.file === path && e.id === member.instanceId);
  expect(forFile('/etc/app/client').map((e) => e.publicKeySha256)).toContain(sha256(createPublicKey(agentKey).export({ type: 'spki', format: 'der' })));
  expect(forFile('/etc/app/tls').map((e) => e.serialNumber)).toContain(server.serialNumber);
});

test("the health report carries the files' digest: the server sees what is stale, and a deleted file comes back without a manual fetch", async () => {
  const { member, file } = only();
  await holdsWhatIsDelivered(worker, member.instanceId, 'the agent holds what the server delivers');
  const seen: FileStatus[] = [];
  const reports = worker.api.context.fileReports;
  const record = reports.record.bind(reports);
  reports.record = (id, status) => {
    if (id === member.instanceId) seen.push(status);
    record(id, status);
  };
  try {
    const pushedBefore = member.agent.pushedFetches;
    rmSync(file('etc/app/hello'));
    const restored = async () => {
      try {
        return readFileSync(file('etc/app/hello'), 'utf8') === `hello from ${member.instanceId}\n` ? true : undefined;
      } catch {
        return undefined;
      }
    };
    await eventually('the deleted file written again', restored, 20_000, 250);
    expect(member.agent.pushedFetches).toBeGreaterThan(pushedBefore);
    const stale = seen.find((s) => s.stale);
    expect(stale?.stale).toEqual({ changed: ['/etc/app/hello'], missing: [], extra: [] });
    expect(stale?.agentHash).not.toBe(stale?.expectedHash);
  } finally {
    reports.record = record;
  }
});

test('a changed var reaches the agent before its periodic fetch (files and the certificate naming it), without replacement', async () => {
  const { member, file } = only();
  const serialBefore = certificateAt(file('etc/app/tls.crt')).serialNumber;
  const pushedBefore = member.agent.pushedFetches;
  config = filesConfig(seed, 'green');
  await apply(config);
  await eventually('the new tier on the instance', async () => (readFileSync(file('etc/app/tier'), 'utf8') === 'green\n' ? true : undefined), 30_000, 250);
  await eventually('a certificate naming the new tier', async () => {
    const cert = certificateAt(file('etc/app/tls.crt'));
    return cert.subjectAltName?.includes(`DNS:${member.instanceId}.green.internal`) ? cert : undefined;
  }, 20_000, 250).then((cert) => expect(cert.serialNumber).not.toBe(serialBefore));
  expect(member.agent.pushedFetches).toBeGreaterThan(pushedBefore);
  expect(fleet.registered()).toEqual([member.instanceId]);
});

test('a certificate two thirds through its life is issued again and reaches the agent, for the same agent key, without replacement', async () => {
  const { member, file } = only();
  const server = certificateAt(file('etc/app/tls.crt'));
  const client = certificateAt(file('etc/app/client.crt'));
  const agentKeyPem = readFileSync(file('etc/app/client.key'), 'utf8');
  // 17 h on: past 2/3 of the server certificate's 24 h (and of the client's 3 h).
  certificateClockAheadMs = 17 * 3600_000;
  const shiftedFrom = Date.now() + certificateClockAheadMs;
  const renewed = await eventually('both certificates issued again', async () => {
    const s = certificateAt(file('etc/app/tls.crt'));
    const c = certificateAt(file('etc/app/client.crt'));
    return s.serialNumber !== server.serialNumber && c.serialNumber !== client.serialNumber ? { s, c } : undefined;
  }, 30_000, 250);
  expect(Date.parse(renewed.s.validTo)).toBeGreaterThan(Date.parse(server.validTo) + 16 * 3600_000);
  // Issued on the issuer's (shifted) clock: notBefore is that clock's now, backdated a few minutes
  // for skew, so not in the future of the clock that issued it (17 h ahead of the wall clock).
  const shiftedTo = Date.now() + certificateClockAheadMs;
  for (const cert of [renewed.s, renewed.c]) {
    expect(Date.parse(cert.validFrom)).toBeLessThanOrEqual(shiftedTo);
    expect(Date.parse(cert.validFrom)).toBeGreaterThanOrEqual(shiftedFrom - 10 * 60_000);
  }
  expect(renewed.s.verify(certificateAt(file('etc/nstance/ca.crt')).publicKey)).toBe(true);
  // The agent's key stayed where it was: the new client certificate is for it.
  expect(readFileSync(file('etc/app/client.key'), 'utf8')).toBe(agentKeyPem);
  expect(jwk(renewed.c.publicKey)).toEqual(jwk(createPublicKey(createPrivateKey(agentKeyPem))));
  expect(fleet.registered()).toEqual([member.instanceId]);
  expect(worker.api.context.certificateFiles.current(member.instanceId, '/etc/app/tls')?.serialNumber).toBe(renewed.s.serialNumber);
});

test('a new leader serves the certificate files already issued (kept in S3, no private key in the clear) and issues none again', async () => {
  const { member, file } = only();
  await holdsWhatIsDelivered(worker, member.instanceId, 'the agent holds what the leader delivers');
  const tls = certificateAt(file('etc/app/tls.crt'));
  const client = certificateAt(file('etc/app/client.crt'));
  const [tlsPem, clientPem, tlsKey] = ['etc/app/tls.crt', 'etc/app/client.crt', 'etc/app/tls.key'].map((p) => readFileSync(file(p), 'utf8'));
  const issuedTo = async () =>
    (await Promise.all((await listKeys(h.aws.s3, h.bucket, `shard/${shard}/certlog/`)).map((k) => readJson<CertLogEntry>(h.aws.s3, h.bucket, k)))).filter(
      (e) => e.kind === 'instance-file' && e.id === member.instanceId,
    );
  const issuedBefore = (await issuedTo()).length;

  const kept = await readJson<{ files: Record<string, CertificateFileRecord> }>(h.aws.s3, h.bucket, s3Keys.certificateFiles(shard, member.instanceId));
  expect(Object.keys(kept.files).sort()).toEqual(['/etc/app/client', '/etc/app/tls']);
  expect(kept.files['/etc/app/tls']).toMatchObject({ serialNumber: tls.serialNumber, sealedKey: expect.any(String) });
  expect(kept.files['/etc/app/client']).toMatchObject({ serialNumber: client.serialNumber, agentKey: true });
  expect(JSON.stringify(kept)).not.toContain('PRIVATE KEY');
  expect(JSON.stringify(kept)).not.toContain(tlsKey.split('\n')[1]);

  // The leader changes: this worker is deposed, another (its own process memory, its own PKI cache) leads, and the leader address moves to it.
  gate.set({ leader: false });
  const nextGate = new MutableLeadershipGate();
  nextGate.set({ leader: true, epoch: 2 });
  const next = await startAgentApiWorker(h, nextGate, { certificateFilesNow: () => Date.now() + certificateClockAheadMs });
  leaderAddress.retarget(next.address);
  worker = next;
  await holdsWhatIsDelivered(next, member.instanceId, 'health reports answered by the new leader, matching what the agent holds', 30_000);
  const delivered = await member.agent.fetchFiles();
  expect(delivered.find((f) => f.path === '/etc/app/tls.crt')?.content).toBe(tlsPem);
  expect(delivered.find((f) => f.path === '/etc/app/tls.key')?.content).toBe(tlsKey);
  expect(delivered.find((f) => f.path === '/etc/app/client.crt')?.content).toBe(clientPem);
  expect(next.api.context.certificateFiles.current(member.instanceId, '/etc/app/tls')?.serialNumber).toBe(tls.serialNumber);
  expect(next.api.context.certificateFiles.current(member.instanceId, '/etc/app/client')?.serialNumber).toBe(client.serialNumber);
  expect(certificateAt(file('etc/app/tls.crt')).serialNumber).toBe(tls.serialNumber);
  expect((await issuedTo()).length).toBe(issuedBefore);
  expect(fleet.registered()).toEqual([member.instanceId]);
});

test('a file removed from the template is removed from the instance (only what the agent wrote), and its health report no longer lists it', async () => {
  const { member, file } = only();
  // Placed by someone else beside the agent's files: never the agent's to remove.
  writeFileSync(file('etc/app/operator-notes'), 'mine');
  expect(await member.agent.written.list()).toEqual(expect.arrayContaining(['/etc/app/hello', '/etc/app/client.crt', '/etc/app/client.key', '/etc/app/client.pub']));
  const trimmed = filesConfig(seed, 'green');
  const files = trimmed.templates.web.files as Record<string, unknown>;
  delete files['/etc/app/hello'];
  delete files['/etc/app/client'];
  config = trimmed;
  await apply(config);
  const exists = (path: string) => {
    try {
      statSync(file(path));
      return true;
    } catch {
      return false;
    }
  };
  // Pushed (periodic fetches are every 100,000 reports here): the health report's answer says the files changed.
  await eventually('the removed files gone from the instance', async () => (['etc/app/hello', 'etc/app/client.crt', 'etc/app/client.key', 'etc/app/client.pub'].some(exists) ? undefined : true), 30_000, 250);
  expect(readFileSync(file('etc/app/operator-notes'), 'utf8')).toBe('mine');
  for (const kept of ['etc/app/token', 'etc/app/tier', 'etc/app/tls.crt', 'etc/app/tls.key', 'etc/nstance/ca.crt']) expect(exists(kept)).toBe(true);
  const written = await member.agent.written.list();
  expect(written).not.toContain('/etc/app/hello');
  expect(written).not.toContain('/etc/app/client.key');
  expect(written).toContain('/etc/app/tier');
  // The report hashes what the agent holds: it matches what the server delivers, which no longer names them.
  const status = await holdsWhatIsDelivered(worker, member.instanceId, 'a report matching the trimmed set');
  expect(status.stale?.extra ?? []).toEqual([]);
  expect(fleet.registered()).toEqual([member.instanceId]);
});

/** Every file under dir, as paths relative to it. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

test('`nstance agent --once --files-root` writes the files under that root with their modes, and nothing outside it', async () => {
  const { member } = only();
  // The real command, registering anew for the instance (the fleet's agent keeps its own state).
  const dir = mkdtempSync(join(tmpdir(), 'nstance-files-cli-'));
  const root = join(dir, 'root');
  writeFileSync(join(dir, 'ca.crt'), (await readClusterCa(h.aws.s3, h.bucket)) ?? '');
  const registrationKey = await getSecret(await openSecrets({ aws: h.aws, bucket: h.bucket, shard, actor: 'test' }), 'registration-key', true);
  const nonce = mintNonce(createPrivateKey(registrationKey.value ?? ''), { cluster: 'test', shard, tenant: 'default', group: 'web', instanceId: member.instanceId }, 60_000).token;
  const args = ['--register', `${seed.leaderIp}:8443`, '--connect', leaderAddress.address, '--nonce', nonce, '--ca-file', join(dir, 'ca.crt'), '--state-dir', join(dir, 'state')];
  // The real paths, as they were (another run with the default root "/" may have left files there).
  const realPaths = ['/etc/app/token', '/etc/app/tier', '/etc/nstance/ca.crt'];
  const realState = () => realPaths.map((path) => (existsSync(path) ? statSync(path).mtimeMs : 'absent'));
  const before = realState();
  // No IMDS here: a port that refuses at once, so the notice check answers "no notice" without waiting.
  const run = await runCli('agent', ...args, '--files-root', root, '--imds-url', 'http://127.0.0.1:1', '--once');
  expect(run).toMatchObject({ code: 0, stdout: expect.stringContaining(`${member.instanceId}: registered`) });

  // Exactly the files the (trimmed) template declares, and the CA bundle, under the root.
  expect(filesUnder(root)).toEqual(['etc/app/app.env', 'etc/app/app.json', 'etc/app/motd', 'etc/app/tier', 'etc/app/tls.crt', 'etc/app/tls.key', 'etc/app/token', 'etc/nstance/ca.crt']);
  // Each with its declared mode: motd's own 0644, else the kind's default (secrets, env and keys 0600;
  // json, string and certificates 0644).
  const modes = Object.fromEntries(filesUnder(root).map((path) => [path, (statSync(join(root, path)).mode & 0o777).toString(8)]));
  expect(modes).toEqual({
    'etc/app/app.env': '600',
    'etc/app/app.json': '644',
    'etc/app/motd': '644',
    'etc/app/tier': '644',
    'etc/app/tls.crt': '644',
    'etc/app/tls.key': '600',
    'etc/app/token': '600',
    'etc/nstance/ca.crt': '644',
  });
  expect(readFileSync(join(root, 'etc/app/token'), 'utf8')).toBe('second-token');
  expect(readFileSync(join(root, 'etc/app/tier'), 'utf8')).toBe('green\n');
  // Outside the root: only the agent's state directory (and the CA file the test gave it); nothing at the real paths.
  expect(readdirSync(dir).sort()).toEqual(['ca.crt', 'root', 'state']);
  expect(filesUnder(join(dir, 'state')).every((p) => !p.startsWith('etc/'))).toBe(true);
  expect(realState()).toEqual(before);
  rmSync(dir, { recursive: true, force: true });
});
