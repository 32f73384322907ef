/**
 * Agent registration end to end: a real worker serves the agent API on loopback,
 * real instance workflows launch into moto with a nonce in their userdata, and
 * the simulated fleet boots one agent per instance from that userdata. The worker's /metrics
 * (its server, over this process's registry) is scraped for the registrations and missed
 * health reports the agent API counted.
 */
import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeInstanceAttributeCommand } from '@aws-sdk/client-ec2';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { CreateSecretCommand, GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { Agent, AgentRequestError } from '../../client/agent/agent';
import { SimulatedFleet } from '../../client/agent/fleet';
import { saveState } from '../../client/agent/state';
import { parseAgentArgs } from '../../client/agent/userdata';
import { applyConfig } from '../../client/ops/apply';
import { groupStatus } from '../../client/ops/status';
import { instanceWorkflowId, s3Keys, TAG } from '../../common/names';
import { instanceHealthSignal, instanceStatusQuery, type AgentRegistration, type HealthTransition } from '../../workflows/definitions';
import type { AuditEntry } from '../../common/types';
import type { CertLogEntry } from '../../adapters/pki/certlog';
import { mintNonce, peekClaims } from '../../adapters/pki/nonce';
import { certificateFingerprint, createCaCertificate, issueCertificate } from '../../adapters/pki/x509';
import { MutableLeadershipGate } from '../../workers/leadership/gate';
import type { AgentApi } from '../../workers/agent-api/server';
import type { SeedResult } from '../../scripts/seed-emulator';
import { eventually, listKeys, readJson, shardInstances, tagOf } from '../support/emulator';
import { configText, seedShard, terminateShardWorkflows, testConfig } from '../support/fixtures';
import { createHarness, type Harness } from '../support/harness';
import { proveCallsAllowed } from '../support/iam-proof';
import { parseConfigText, type NstanceConfig } from '../../common/config';
import { startAgentApiWorker } from '../support/agent-api-worker';
import { signalsIn } from '../support/history';
import { postToAgentApi, type AgentApiResponse } from '../support/agent-api-call';
import { runCli } from '../support/cli';
import { sample, scrapeMetrics, serveDomainMetrics } from '../support/metrics-scrape';

const shard = `agt-${Date.now().toString(36)}`;
const prefix = `nstance/${shard}/`;
const AGENT_USERDATA =
  "#!/bin/bash\nmkdir -p /etc/nstance && cat > /etc/nstance/ca.crt <<'CA'\n{{ .Server.CACert }}\nCA\n/opt/nstance/agent --register {{ .Server.RegistrationAddr }} --nonce {{ .Nonce }}\n";
let h: Harness;
let seed: SeedResult;
let api: AgentApi;
let fleet: SimulatedFleet;
let caPem: string;
let address: string;
const gate = new MutableLeadershipGate();
let applied: NstanceConfig | undefined;
let metrics: Awaited<ReturnType<typeof serveDomainMetrics>> | undefined;

beforeAll(async () => {
  h = await createHarness({ shard, bucket: `nstance-${shard}` });
  seed = await seedShard(h);
  const config = testConfig(seed, { shard, bucket: h.bucket, size: 2 }) as { templates: { web: { userdata: { content: string } } } };
  config.templates.web.userdata.content = AGENT_USERDATA;
  // A file the agents of default/web must receive, read from Secrets Manager at request time.
  await h.aws.secrets.send(new CreateSecretCommand({ Name: `${prefix}files/default/web/etc/app/token`, SecretString: 's3cr3t-token' }));
  await applyConfig({ client: h.client, s3: h.aws.s3, text: configText(config), file: 'config.jsonc', actor: 'test' });
  applied = parseConfigText(configText(config), 'config.jsonc');

  gate.set({ leader: true, epoch: 1 });
  ({ api, address } = await startAgentApiWorker(h, gate));
  metrics = await serveDomainMetrics();
  caPem = await readText(s3Keys.caCert());
  // No caPem: the agents trust only what their userdata holds (the nonce pins the CA).
  fleet = new SimulatedFleet({ ec2: h.aws.ec2, shard, resolveAddress: () => address, stateRoot: mkdtempSync(join(tmpdir(), 'nstance-fleet-')), pollMs: 300 }).start();
});

afterAll(async () => {
  await metrics?.close();
  await fleet?.stop();
  await terminateShardWorkflows(h.client, shard);
  await h.close();
  // The IAM proof for registration, certificates and secret files: every call against the generated policy.
  if (applied) await proveCallsAllowed(h.faults.calls, [applied]);
});

async function readText(key: string): Promise<string> {
  const out = await h.aws.s3.send(new GetObjectCommand({ Bucket: h.bucket, Key: key }));
  return out.Body!.transformToString('utf8');
}

async function audits(action: string): Promise<AuditEntry[]> {
  // Rejections are audited as summaries per window: write the current one first.
  await api.context.rejections.flush();
  const keys = await listKeys(h.aws.s3, h.bucket, `shard/${shard}/audit/`);
  const entries = await Promise.all(keys.map((k) => readJson<AuditEntry>(h.aws.s3, h.bucket, k)));
  return entries.filter((e) => e.action === action);
}

/** Agent registrations the scrape counts, by kind ("new", or "repeat": a retry with the spent nonce and the same key). */
async function registrationsCounted(kind: 'new' | 'repeat'): Promise<number> {
  return sample(await scrapeMetrics(metrics?.url as string), 'nstance_agent_registrations_total', { tenant: 'default', group: 'web', kind }) ?? 0;
}
/**
 * Missed health reports the scrape counts, and the instances (any EC2 still shows) that the agent API's health
 * tracker holds unhealthy for them.
 */
async function missedHealth(): Promise<{ counted: number; unhealthy: number }> {
  const instances = await shardInstances(h.aws.ec2, shard, ['pending', 'running', 'shutting-down', 'terminated']);
  const unhealthy = instances.map((i) => tagOf(i, TAG.instanceId)).filter((id) => id !== undefined && api.tracker.state(id)?.state === 'unhealthy').length;
  const counted = sample(await scrapeMetrics(metrics?.url as string), 'nstance_agent_missed_health_reports_total') ?? 0;
  return { counted, unhealthy };
}
/**
 * Every instance the tracker newly holds unhealthy (at least the one silenced) was counted. The count may be
 * higher: an agent of an instance an earlier test terminated stops reporting too, and on a busy machine an agent
 * may miss its reports and then recover (counted once, healthy again).
 */
async function expectMissedCounted(before: { counted: number; unhealthy: number }): Promise<void> {
  let now = before;
  await eventually('the scrape to count each instance newly held unhealthy', async () => {
    now = await missedHealth();
    const newlyUnhealthy = now.unhealthy - before.unhealthy;
    return newlyUnhealthy >= 1 && now.counted - before.counted >= newlyUnhealthy ? true : undefined;
  }, 10_000, 250).catch((err: Error) => {
    throw new Error(`${err.message}: counted ${before.counted} -> ${now.counted}, tracked unhealthy ${before.unhealthy} -> ${now.unhealthy}`);
  });
}

/** The events kept whole in the rejection summaries of `action` (each a sample of one refused request). */
async function rejectedSamples(action: string): Promise<Record<string, unknown>[]> {
  return (await audits(action)).flatMap((e) => (e.details?.samples as Record<string, unknown>[] | undefined) ?? []);
}

/** The arguments of the `name` signals in an instance workflow's history, oldest first. */
async function signalArgs<T>(instanceId: string, name: string): Promise<T[]> {
  return (await signalsIn<T>(h.client, instanceWorkflowId(shard, instanceId), name)).map((s) => s.arg);
}

/** A raw request, for what the real agent would never send. */
function call(path: string, body: unknown, tls: { key?: string; cert?: string } = {}): Promise<AgentApiResponse> {
  return postToAgentApi({ port: api.address?.port, ca: caPem, ...tls }, path, JSON.stringify(body));
}

function publicKeyPem(): string {
  return generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }) as string;
}

async function registrationKey() {
  const out = await h.aws.secrets.send(new GetSecretValueCommand({ SecretId: `${prefix}registration-key` }));
  return createPrivateKey(out.SecretString as string);
}

/** The two instances the group started with (replacements launched by later tests join the fleet too). */
let original: string[] = [];
const ids = () => original;

test('register and serve: both agents get a CA-signed certificate, logged with its serial, and their workflows hear of it', async () => {
  await eventually('2 registered agents', async () => (fleet.registered().length === 2 ? true : undefined), 90_000);
  original = fleet.registered();
  const ca = new X509Certificate(caPem);
  const logKeys = (await listKeys(h.aws.s3, h.bucket, `shard/${shard}/certlog/`)).filter((k) => !k.includes('/_server.'));
  const logs = await Promise.all(logKeys.map((k) => readJson<CertLogEntry>(h.aws.s3, h.bucket, k)));
  expect(logs).toHaveLength(2);
  for (const member of [...fleet.members.values()]) {
    const cert = new X509Certificate(member.agent.certificatePem as string);
    expect(cert.subject.split('\n')).toContain(`CN=${member.instanceId}`);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.checkIssued(ca)).toBe(true);
    const entry = logs.find((l) => l.id === member.instanceId);
    expect(entry?.serialNumber).toBe(cert.serialNumber);
    expect(logKeys).toContainEqual(expect.stringMatching(new RegExp(`^shard/${shard}/certlog/default\\.\\d{17}\\.${member.instanceId}\\.json$`)));

    // Stamped with the epoch of the leader that issued it (the gate's: 1).
    expect(await signalArgs<AgentRegistration>(member.instanceId, 'agentRegistered')).toEqual([
      expect.objectContaining({ certificateSerial: cert.serialNumber, leaderEpoch: 1 }),
    ]);
    expect(entry?.leaderEpoch).toBe(1);
  }
  // The server certificate is logged too, under the _server pseudo-tenant.
  expect((await listKeys(h.aws.s3, h.bucket, `shard/${shard}/certlog/_server.`)).length).toBeGreaterThanOrEqual(1);
  expect((await audits('agent.register')).map((e) => e.instanceIds?.[0]).sort()).toEqual(ids());
  // The scrape counts the two agents that got a certificate, as new registrations.
  expect([await registrationsCounted('new'), await registrationsCounted('repeat')]).toEqual([fleet.registered().length, 0]);
});

test('agents report health over mTLS (kept in memory) and receive the CA bundle and their secret files', async () => {
  for (const id of ids()) {
    await eventually(`a health report from ${id}`, async () => api.tracker.state(id)?.lastReport);
    expect(api.tracker.state(id)?.state).toBe('healthy');
  }
  const member = fleet.member(ids()[0]) as NonNullable<ReturnType<typeof fleet.member>>;
  const root = join(member.agent.options.stateDir, 'files');
  await eventually('files on disk', async () => readFile(join(root, 'etc/app/token'), 'utf8').catch(() => undefined));
  expect(await readFile(join(root, 'etc/app/token'), 'utf8')).toBe('s3cr3t-token');
  expect(await readFile(join(root, 'etc/nstance/ca.crt'), 'utf8')).toBe(caPem);
});

test('a replayed nonce is rejected, with an audit entry', async () => {
  const member = fleet.member(ids()[0]) as NonNullable<ReturnType<typeof fleet.member>>;
  const { UserData } = await h.aws.ec2.send(
    new DescribeInstanceAttributeCommand({ InstanceId: member.ec2InstanceId, Attribute: 'userData' }),
  );
  const args = parseAgentArgs(Buffer.from(UserData?.Value ?? '', 'base64').toString('utf8'));
  expect(args?.register).toBe(`${seed.leaderIp}:8443`);
  // The nonce pins the CA in ca.crt: that is how the agents found it without a CA file.
  const claims = peekClaims(args?.nonce ?? '');
  expect(claims?.cafp).toBe(certificateFingerprint(caPem));
  // It names this instance of default/web, and lives for garbage_collection.registration_timeout (5m).
  expect(claims).toMatchObject({ cluster: 'test', shard, tenant: 'default', group: 'web', sub: member.instanceId });
  expect((claims?.exp ?? 0) - (claims?.iat ?? 0)).toBe(5 * 60);
  const res = await call('/v1/register', { nonce: args?.nonce, publicKey: publicKeyPem() });
  expect(res.status).toBe(409);
  expect(res.body).toMatchObject({ error: 'nonce-replayed', message: expect.stringMatching(/already used/) });
  const rejected = await audits('agent.register.rejected');
  expect(rejected.some((e) => e.details?.reason === 'nonce-replayed' && e.instanceIds?.includes(member.instanceId))).toBe(true);
});

test('a registration retried with the same key (lost response) gets the same certificate, not a second one; the nonce stays spent for any other key', async () => {
  const id = ids()[1];
  const nonce = mintNonce(await registrationKey(), { cluster: 'test', shard, tenant: 'default', group: 'web', instanceId: id }, 60_000).token;
  const publicKey = publicKeyPem();
  const counted = { new: await registrationsCounted('new'), repeat: await registrationsCounted('repeat') };
  const first = await call('/v1/register', { nonce, publicKey });
  const retried = await call('/v1/register', { nonce, publicKey });
  expect([first.status, retried.status]).toEqual([200, 200]);
  // The first with a fresh nonce counts as new, the retry with the spent one as a repeat.
  expect([await registrationsCounted('new'), await registrationsCounted('repeat')]).toEqual([counted.new + 1, counted.repeat + 1]);
  const [one, two] = [first, retried].map((r) => r.body as { serialNumber?: string; certificate?: string });
  expect(two.serialNumber).toBe(one.serialNumber);
  expect(two.certificate).toBe(one.certificate);
  // One issuance, so one certlog entry for it.
  const logged = await Promise.all(
    (await listKeys(h.aws.s3, h.bucket, `shard/${shard}/certlog/default.`)).map((k) => readJson<CertLogEntry>(h.aws.s3, h.bucket, k)),
  );
  expect(logged.filter((e) => e.serialNumber === one.serialNumber)).toHaveLength(1);
  expect((await audits('agent.register')).some((e) => e.details?.repeatOfSpentNonce === true && e.details?.serialNumber === one.serialNumber)).toBe(true);
  expect((await call('/v1/register', { nonce, publicKey: publicKeyPem() })).body.error).toBe('nonce-replayed');
});

test('an agent whose nonce pins another CA refuses to register (the nonce is never sent)', async () => {
  const id = ids()[1];
  const roguePin = certificateFingerprint(await createCaCertificate(generateKeyPairSync('ed25519').privateKey, 'test'));
  const nonce = mintNonce(await registrationKey(), { cluster: 'test', shard, tenant: 'default', group: 'web', instanceId: id, caFingerprint: roguePin }, 60_000);
  const agent = new Agent({ registerAddress: `${seed.leaderIp}:8443`, connectAddress: address, nonce: nonce.token, stateDir: mkdtempSync(join(tmpdir(), 'nstance-pin-')) });
  await expect(agent.register()).rejects.toThrow(/did not present the cluster CA pinned by the nonce/);
  const spent = await listKeys(h.aws.s3, h.bucket, `shard/${shard}/nonce/${nonce.claims.jti}`);
  expect(spent).toEqual([]);
});

test('expired, forged and other-shard nonces are each rejected with a clear reason and audited', async () => {
  const id = ids()[0];
  const subject = { cluster: 'test', shard, tenant: 'default', group: 'web', instanceId: id };
  const key = await registrationKey();
  const cases = [
    { nonce: mintNonce(key, subject, 60_000, Date.now() - 10 * 60_000).token, status: 401, error: 'nonce-expired', message: /expired/ },
    { nonce: mintNonce(generateKeyPairSync('ed25519').privateKey, subject, 60_000).token, status: 401, error: 'nonce-bad-signature', message: /signature/ },
    { nonce: mintNonce(key, { ...subject, shard: 'another-shard' }, 60_000).token, status: 403, error: 'nonce-wrong-shard', message: /another-shard/ },
    { nonce: mintNonce(key, { ...subject, cluster: 'another-cluster' }, 60_000).token, status: 403, error: 'nonce-wrong-cluster', message: /another-cluster/ },
  ];
  for (const c of cases) {
    const res = await call('/v1/register', { nonce: c.nonce, publicKey: publicKeyPem() });
    expect({ status: res.status, error: res.body.error }).toEqual({ status: c.status, error: c.error });
    expect(res.body.message).toMatch(c.message);
  }
  const reasons = (await audits('agent.register.rejected')).map((e) => e.details?.reason);
  for (const c of cases) expect(reasons).toContain(c.error);
});

test('a client certificate from another CA is rejected on /v1/health (401, audited)', async () => {
  const id = ids()[0];
  const rogueCa = generateKeyPairSync('ed25519').privateKey;
  const rogueCaPem = await createCaCertificate(rogueCa, 'test');
  const key = generateKeyPairSync('ed25519');
  const cert = await issueCertificate({ caCertPem: rogueCaPem, caKey: rogueCa, publicKey: key.publicKey, commonName: id, usage: 'client', uris: [`nstance://test/${shard}/default/web/${id}`], validityDays: 1 });
  // The real agent code, holding a forged identity (but trusting the real CA for the server).
  const stateDir = mkdtempSync(join(tmpdir(), 'nstance-rogue-'));
  await saveState(stateDir, { keyPem: key.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, certPem: cert.pem, caPem, identity: { instanceId: id, serialNumber: cert.serialNumber, registeredAt: new Date().toISOString(), healthCheckIntervalMs: 3000 } });
  const rogue = new Agent({ registerAddress: `${seed.leaderIp}:8443`, connectAddress: address, caPem, stateDir });
  const err = await rogue.reportHealth().catch((e: unknown) => e);
  expect(err).toBeInstanceOf(AgentRequestError);
  expect(err).toMatchObject({ status: 401, code: 'client-certificate-untrusted' });
  const rejected = await audits('agent.auth.rejected');
  expect(rejected.some((e) => e.details?.reason === 'client-certificate-untrusted')).toBe(true);
  expect((await rejectedSamples('agent.auth.rejected')).some((e) => e.serialNumber === cert.serialNumber)).toBe(true);
  // No certificate at all is refused too.
  expect((await call('/v1/health', { instanceId: id })).status).toBe(401);
});

test("a health report for another instance than the certificate's is rejected (403, audited)", async () => {
  const [a, b] = ids();
  const member = fleet.member(a);
  const stateDir = member?.agent.options.stateDir as string;
  const tls = { key: await readFile(join(stateDir, 'key.pem'), 'utf8'), cert: await readFile(join(stateDir, 'cert.pem'), 'utf8') };
  const res = await call('/v1/health', { instanceId: b, status: 'unhealthy' }, tls);
  expect(res).toMatchObject({ status: 403, body: { error: 'instance-mismatch' } });
  expect(api.tracker.state(b)?.state).toBe('healthy');
  const rejected = await rejectedSamples('agent.health.rejected');
  expect(rejected.some((e) => (e.instanceIds as string[] | undefined)?.join() === `${a},${b}`)).toBe(true);
  // Its own report is accepted.
  expect((await call('/v1/health', { instanceId: a, status: 'healthy' }, tls)).status).toBe(200);
});

test('a worker that is not the leader answers 503 on every path', async () => {
  gate.set({ leader: false, epoch: 1 });
  try {
    for (const path of ['/v1/register', '/v1/health']) {
      const res = await call(path, {});
      expect(res).toMatchObject({ status: 503, body: { error: 'not-leader' } });
    }
  } finally {
    gate.set({ leader: true, epoch: 2 });
  }
});

test('`nstance agent --once` registers with a nonce, fetches files and reports health', async () => {
  const id = ids()[1];
  const nonce = mintNonce(await registrationKey(), { cluster: 'test', shard, tenant: 'default', group: 'web', instanceId: id }, 60_000).token;
  const dir = mkdtempSync(join(tmpdir(), 'nstance-cli-agent-'));
  await writeFile(join(dir, 'ca.crt'), caPem);
  const common = ['--register', `${seed.leaderIp}:8443`, '--connect', address, '--ca-file', join(dir, 'ca.crt'), '--state-dir', join(dir, 'state'), '--once'];
  const first = await runCli('agent', ...common, '--nonce', nonce);
  expect(first.code).toBe(0);
  expect(first.stderr).toMatch(`registered as ${id}`);
  expect(first.stdout).toMatch(new RegExp(`^${id}: registered \\(certificate [0-9A-F]+\\), 2 files, health reported`));
  // Restarted, it reuses its saved certificate: the (now spent) nonce is not sent again.
  const second = await runCli('agent', ...common, '--nonce', nonce);
  expect(second.code).toBe(0);
  expect(second.stdout).toBe(first.stdout);
});

test('steady health reports add nothing to history; a termination notice becomes one instanceHealth signal', async () => {
  const id = ids()[0];
  const handle = h.client.workflow.getHandle(instanceWorkflowId(shard, id));
  const healthSignals = async () =>
    ((await handle.fetchHistory()).events ?? []).filter((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'instanceHealth').length;
  expect(await healthSignals()).toBe(0);
  const deadline = new Date(Date.now() + 120_000).toISOString();
  fleet.setHealth(id, { status: 'healthy', terminationNotice: { deadline, reason: 'spot interruption' } });
  await eventually('the termination notice signal', async () => ((await healthSignals()) >= 1 ? true : undefined), 30_000);
  // The same notice again (sent directly: the workflow may already be replacing this instance): still one signal.
  await fleet.member(id)?.agent.reportHealth({ status: 'healthy', terminationNotice: { deadline, reason: 'spot interruption' } });
  await new Promise((r) => setTimeout(r, 1000)); // signals are sent in the background: give a wrong one time to land
  expect(await healthSignals()).toBe(1);
});

test('an agent that stops reporting is signalled unhealthy once, after 3 missed intervals, and is replaced', async () => {
  const id = ids()[1];
  const handle = h.client.workflow.getHandle(instanceWorkflowId(shard, id));
  const unhealthy = async () =>
    ((await handle.fetchHistory()).events ?? []).filter((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'instanceHealth').length;
  expect(await unhealthy()).toBe(0);
  const stateDir = fleet.member(id)?.agent.options.stateDir as string;
  const missedBefore = await missedHealth();
  fleet.silence(id);
  const silencedAt = Date.now();
  await eventually('the unhealthy signal', async () => ((await unhealthy()) >= 1 ? true : undefined), 60_000);
  // The scrape counts the missed health reports that made it unhealthy.
  await expectMissedCounted(missedBefore);
  // health_check_interval is 3s in the test config: not before 3 intervals.
  expect(Date.now() - silencedAt).toBeGreaterThanOrEqual(2 * 3000);
  expect(api.tracker.state(id)?.state).toBe('unhealthy');

  // ...and the group replaces it: a new instance registers through the fleet, the silent one is drained and terminated.
  const ref = { shard, tenant: 'default', group: 'web' };
  const after = await eventually('replaced', async () => {
    const s = await groupStatus(h.client, ref);
    const serving = s.members.filter((m) => m.phase === 'in-service');
    return serving.length === 2 && s.members.length === 2 && !s.members.some((m) => m.instanceId === id) ? s : undefined;
  }, 90_000);
  // The group forgets a member once it reports terminated (or EC2 shows it gone); its workflow ends a moment later.
  await eventually('its workflow completed', async () => ((await handle.describe()).status.name === 'COMPLETED' ? true : undefined), 30_000);
  // Its certificate is valid for 90 days, but its instance is gone: no more files (secrets) for it. The
  // agent API trusts a "still running" answer for 30 s, so the refusal may take that long to start.
  const gone = new Agent({ registerAddress: `${seed.leaderIp}:8443`, connectAddress: address, stateDir });
  const refused = await eventually('files refused to the terminated instance', async () => gone.fetchFiles().then(() => undefined, (err: unknown) => err), 45_000, 1000);
  expect(refused).toMatchObject({ status: 403, code: 'instance-not-running' });
  expect((await rejectedSamples('agent.files.rejected')).some((e) => (e.instanceIds as string[] | undefined)?.[0] === id && e.workflowStatus === 'COMPLETED')).toBe(true);
  await eventually('the emulator runs exactly the group', async () => {
    const running = (await shardInstances(h.aws.ec2, shard)).map((i) => i.InstanceId).sort();
    return JSON.stringify(running) === JSON.stringify(after.members.map((m) => m.ec2InstanceId).sort()) ? true : undefined;
  });
});

/** Two members in service that nothing is replacing (earlier tests may still be replacing one). */
async function twoSettledMembers(): Promise<[string, string]> {
  return eventually('two settled members in service', async () => {
    const s = await groupStatus(h.client, { shard, tenant: 'default', group: 'web' });
    const settled = s.members.filter((m) => m.phase === 'in-service' && !m.leaving && !m.replacing && (m.health ?? 'healthy') === 'healthy');
    return settled.length >= 2 ? ([settled[0].instanceId, settled[1].instanceId] as [string, string]) : undefined;
  }, 90_000);
}
const instanceStatus = (id: string) => h.client.workflow.getHandle(instanceWorkflowId(shard, id)).query(instanceStatusQuery);
const groupMember = async (id: string) => (await groupStatus(h.client, { shard, tenant: 'default', group: 'web' })).members.find((m) => m.instanceId === id);

test('a health signal from a deposed leader (an older epoch) does not change the instance workflow', async () => {
  const [id] = await twoSettledMembers();
  const handle = h.client.workflow.getHandle(instanceWorkflowId(shard, id));
  const deposed = gate.state.epoch ?? 0;
  gate.set({ leader: true, epoch: deposed + 1 });
  const at = () => new Date().toISOString();
  // What the new leader says (epoch N+1), then what the deposed one still had in flight (epoch N).
  await handle.signal(instanceHealthSignal, { instanceId: id, status: 'healthy', reason: 'new leader', at: at(), leaderEpoch: deposed + 1 });
  await handle.signal(instanceHealthSignal, { instanceId: id, status: 'unhealthy', reason: 'stale view of a deposed leader', at: at(), leaderEpoch: deposed });
  // A signal that lands while a workflow task runs is buffered: wait until both are in history and handled.
  await eventually('both signals handled', async () => {
    const events = (await handle.fetchHistory()).events ?? [];
    const lastSignal = events.map((e) => e.workflowExecutionSignaledEventAttributes?.signalName).lastIndexOf('instanceHealth');
    const handled = events.slice(lastSignal).some((e) => e.workflowTaskCompletedEventAttributes);
    return handled && (await signalArgs<HealthTransition>(id, 'instanceHealth')).some((t) => t.leaderEpoch === deposed) ? true : undefined;
  }, 15_000, 200);
  expect((await signalArgs<HealthTransition>(id, 'instanceHealth')).slice(-2)).toEqual([
    expect.objectContaining({ status: 'healthy', leaderEpoch: deposed + 1 }),
    expect.objectContaining({ status: 'unhealthy', leaderEpoch: deposed }),
  ]);
  // The stale one changed nothing, and the group was not told of it.
  expect((await instanceStatus(id)).health).toBe('healthy');
  await new Promise((r) => setTimeout(r, 500));
  expect(await groupMember(id)).toMatchObject({ health: 'healthy', phase: 'in-service' });
  expect((await groupMember(id))?.replacing).toBeUndefined();
});

test('a new leader watches agents it never heard from: one silent across the leader change is signalled unhealthy after 3 intervals', async () => {
  const [, id] = await twoSettledMembers();
  fleet.silence(id);
  // A new leader (epoch + 1): its tracker starts empty, and the silent agent never reports to it.
  const epoch = (gate.state.epoch ?? 0) + 1;
  gate.set({ leader: true, epoch });
  const changedAt = Date.now();
  await api.seeding;
  expect(api.tracker.state(id)?.state).toBe('healthy');
  // The new leader's tracker starts empty: what it gives up on from here is counted.
  const missedBefore = await missedHealth();
  // health_check_interval is 3s: unhealthy after 3 of them (checked twice per interval), with slack for a busy box.
  await eventually('the unhealthy transition, read back from the workflow', async () => ((await instanceStatus(id)).health === 'unhealthy' ? true : undefined), 30_000, 250);
  expect(Date.now() - changedAt).toBeGreaterThanOrEqual(2 * 3000);
  expect((await signalArgs<HealthTransition>(id, 'instanceHealth')).filter((t) => t.leaderEpoch === epoch)).toEqual([expect.objectContaining({ status: 'unhealthy', leaderEpoch: epoch, reason: expect.stringMatching(/3 missed intervals/) })]);
  await expectMissedCounted(missedBefore);
  await eventually('the group sees it unhealthy', async () => ((await groupMember(id))?.health === 'unhealthy' || (await groupMember(id))?.leaving ? true : undefined), 15_000);
});

test('userdata carries the CA certificate, the registration address and a nonce', async () => {
  const [instance] = await shardInstances(h.aws.ec2, shard);
  const attr = await h.aws.ec2.send(new DescribeInstanceAttributeCommand({ InstanceId: instance.InstanceId, Attribute: 'userData' }));
  const userdata = Buffer.from(attr.UserData?.Value ?? '', 'base64').toString('utf8');
  expect(userdata).toContain(caPem.trim());
  expect(userdata).toContain(`--register ${seed.leaderIp}:8443 --nonce ey`);
});
