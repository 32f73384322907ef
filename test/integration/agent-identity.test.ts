/**
 * Agent identity over time, end to end through the real agent (the simulated fleet runs the same
 * Agent class as `nstance agent`): its certificate is renewed before it expires, and keeps working
 * past the old one's expiry; once its instance's workflow is gone, its certificate is refused on
 * every mTLS endpoint.
 *
 * Certificates here live 45 s (the agent API's clientCertValidityDays), so a renewal happens within
 * the test; in production they live 90 days and renew after 60.
 */
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SimulatedFleet } from '../../client/agent/fleet';
import { loadState } from '../../client/agent/state';
import { applyConfig } from '../../client/ops/apply';
import { instanceWorkflowId } from '../../common/names';
import type { CertLogEntry } from '../../adapters/pki/certlog';
import { MutableLeadershipGate } from '../../workers/leadership/gate';
import { callAgentApi } from '../support/agent-api-call';
import { startAgentApiWorker, type AgentApiWorker } from '../support/agent-api-worker';
import { eventually, listKeys, readJson } from '../support/emulator';
import { configText, seedShard, terminateShardWorkflows, testConfig } from '../support/fixtures';
import { createHarness, type Harness } from '../support/harness';
import { proveCallsAllowed } from '../support/iam-proof';
import { parseConfigText, type NstanceConfig } from '../../common/config';

jest.setTimeout(240_000);

const shard = `aid-${Date.now().toString(36)}`;
const VALIDITY_MS = 45_000;
const AGENT_USERDATA =
  "#!/bin/bash\nmkdir -p /etc/nstance && cat > /etc/nstance/ca.crt <<'CA'\n{{ .Server.CACert }}\nCA\n/opt/nstance/agent --register {{ .Server.RegistrationAddr }} --nonce {{ .Nonce }}\n";

let h: Harness;
let fleet: SimulatedFleet;
let worker: AgentApiWorker;
let caPem: string;
let applied: NstanceConfig | undefined;

beforeAll(async () => {
  h = await createHarness({ shard, bucket: `nstance-${shard}` });
  const seed = await seedShard(h);
  const config = testConfig(seed, { shard, bucket: h.bucket, size: 1, reconcileInterval: '2s' }) as { templates: { web: { userdata: { content: string } } } };
  config.templates.web.userdata.content = AGENT_USERDATA;
  await applyConfig({ client: h.client, s3: h.aws.s3, text: configText(config), file: 'config.jsonc', actor: 'test' });
  applied = parseConfigText(configText(config), 'config.jsonc');
  const gate = new MutableLeadershipGate();
  gate.set({ leader: true, epoch: 1 });
  worker = await startAgentApiWorker(h, gate, { clientCertValidityDays: VALIDITY_MS / 86_400_000, instanceCheckTtlMs: 1000 });
  caPem = (await worker.api.context.pki()).pki.caCertPem;
  fleet = new SimulatedFleet({ ec2: h.aws.ec2, shard, resolveAddress: () => worker.address, stateRoot: mkdtempSync(join(tmpdir(), 'nstance-aid-fleet-')), pollMs: 300 }).start();
});

afterAll(async () => {
  await fleet?.stop();
  await terminateShardWorkflows(h.client, shard);
  await h?.close();
  // The IAM proof: every AWS call of the registrations, renewals and refusals, against the generated policy.
  if (applied && process.env.NSTANCE_IAM_PROOF !== 'off') await proveCallsAllowed(h.faults.calls, [applied]);
});

test('the agent renews its certificate before it expires, and keeps reporting with the new one past the old expiry', async () => {
  const [instanceId] = await eventually('the agent registered', async () => (fleet.registered().length === 1 ? fleet.registered() : undefined), 90_000);
  const member = fleet.member(instanceId as string)!;
  const first = { serial: member.agent.serialNumber as string, notAfter: Date.parse(new X509Certificate(member.agent.certificatePem as string).validTo) };
  const renewedSerial = await eventually('a renewed certificate', async () => (member.agent.serialNumber !== first.serial ? member.agent.serialNumber : undefined), VALIDITY_MS + 15_000, 250);
  // Renewed before the first certificate expired, and logged as its renewal.
  expect(Date.now()).toBeLessThan(first.notAfter);
  const entries = await Promise.all((await listKeys(h.aws.s3, h.bucket, `shard/${shard}/certlog/default.`)).map((k) => readJson<CertLogEntry>(h.aws.s3, h.bucket, k)));
  const renewal = entries.find((e) => e.serialNumber === renewedSerial);
  expect(renewal).toMatchObject({ id: instanceId, renewalOf: first.serial, kind: 'agent-client' });
  expect(Date.parse(renewal!.issuedAt)).toBeLessThan(first.notAfter);
  // The state directory holds the new pair (what a restarted agent would load).
  const saved = await loadState(member.agent.options.stateDir);
  expect(saved?.identity.serialNumber).toBe(member.agent.serialNumber);
  // Past the first certificate's expiry the agent still reports: its health requests succeed.
  await new Promise((r) => setTimeout(r, Math.max(0, first.notAfter - Date.now()) + 4_000));
  expect(member.agent.lastError).toBeUndefined();
  expect(Date.parse(new X509Certificate(member.agent.certificatePem as string).validTo)).toBeGreaterThan(Date.now());
});

test("a terminated instance's certificate is refused on every mTLS endpoint", async () => {
  const [instanceId] = fleet.registered();
  const member = fleet.member(instanceId as string)!;
  const state = (await loadState(member.agent.options.stateDir))!;
  member.agent.stop();
  const tls = { port: worker.port, ca: caPem, key: state.keyPem, cert: state.certPem };
  const health = () => callAgentApi(tls, 'POST', '/v1/health', JSON.stringify({ instanceId, status: 'healthy' }));
  // While its workflow runs, the certificate works.
  expect((await health()).status).toBe(200);
  await h.client.workflow.getHandle(instanceWorkflowId(shard, instanceId as string)).terminate('test: the instance is gone');
  await eventually('health refused', async () => ((await health()).status === 403 ? true : undefined), 15_000, 250);
  const answers = await Promise.all([
    health(),
    callAgentApi(tls, 'GET', '/v1/files'),
    callAgentApi(tls, 'POST', '/v1/renew', JSON.stringify({ instanceId, publicKey: generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }) })),
    callAgentApi(tls, 'POST', '/v1/keys', JSON.stringify({ instanceId, publicKeys: { '/etc/app/client': generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }) } })),
  ]);
  expect(answers.map((a) => [a.status, a.body.error])).toEqual([
    [403, 'instance-not-running'],
    [403, 'instance-not-running'],
    [403, 'instance-not-running'],
    [403, 'instance-not-running'],
  ]);
});
