/**
 * No secret in any history, read as Temporal's database holds it. Runs after every other
 * integration test file (sorted last by test/support/sequencer.js; its scan waits for the others to
 * finish, test/support/finished-files.ts), so it reads every history the suite produced: every execution the dev server lists, every run, every event.
 *
 * It also runs a registration of its own first (userdata with a nonce, a custom secret file, the
 * CA and registration keys), so it never passes on an empty server, and a canary (a workflow
 * started by a client without the codec) shows that the scan does find plaintext secrets: of
 * Secrets Manager, of Parameter Store, of object storage (and its key), recorded values and the
 * payload codec's key.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeInstanceAttributeCommand } from '@aws-sdk/client-ec2';
import { CreateSecretCommand, GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { PutParameterCommand } from '@aws-sdk/client-ssm';
import { Client, Connection } from '@temporalio/client';
import { SimulatedFleet } from '../../client/agent/fleet';
import { applyConfig } from '../../client/ops/apply';
import { MutableLeadershipGate } from '../../workers/leadership/gate';
import { KeyRing } from '../../adapters/secrets/crypto';
import { ObjectStorageSecretStore } from '../../adapters/secrets/object-storage';
import type { SeedResult } from '../../scripts/seed-emulator';
import { eventually, shardInstances } from '../support/emulator';
import { configText, seedShard, terminateShardWorkflows, testConfig } from '../support/fixtures';
import { createHarness, type Harness } from '../support/harness';
import { startAgentApiWorker } from '../support/agent-api-worker';
import { fragments, knownSecrets, PAYLOAD_KEY_LABEL, scanNamespace, type KnownSecret, type ScanFinding } from '../support/history-scan';
import { TEST_PAYLOAD_KEY } from '../support/payload-key';
import { stackEnv } from '../support/stack-env';
import { waitForOtherFiles } from '../support/finished-files';
import { recordSecretsKey, recordSecretValue } from '../support/secret-ledger';

jest.setTimeout(600_000);

const shard = `scan-${Date.now().toString(36)}`;
const prefix = `nstance/${shard}/`;
const FILE_SECRET = `file-secret-${Date.now().toString(36)}-do-not-leak`;
const AGENT_USERDATA =
  "#!/bin/bash\nmkdir -p /etc/nstance && cat > /etc/nstance/ca.crt <<'CA'\n{{ .Server.CACert }}\nCA\n/opt/nstance/agent --register {{ .Server.RegistrationAddr }} --nonce {{ .Nonce }} --scan-marker history-scan\n";
const CANARY_ID = `history-scan-canary-${shard}`;
/** The canary's other secrets: a SecureString, an object-storage secret (under a recorded key) and a recorded value. */
const PARAMETER = `/nstance/${shard}/canary`;
const PARAMETER_VALUE = `parameter-${randomBytes(12).toString('hex')}`;
const OBJECT_VALUE = `object-${randomBytes(12).toString('hex')}`;
const RECORDED_VALUE = `recorded-${randomBytes(12).toString('hex')}`;
const OBJECT_KEY = randomBytes(32);

let h: Harness;
let seed: SeedResult;
let fleet: SimulatedFleet;
let raw: Connection;
/** What this file's own instances were launched with: userdata holding their nonces. */
const launchedWith: KnownSecret[] = [];

beforeAll(async () => {
  h = await createHarness({ shard, bucket: `nstance-${shard}` });
  raw = await Connection.connect({ address: stackEnv().temporalAddress });
  seed = await seedShard(h);
  const config = testConfig(seed, { shard, bucket: h.bucket, size: 1 }) as { templates: { web: { userdata: { content: string } } } };
  config.templates.web.userdata.content = AGENT_USERDATA;
  await h.aws.secrets.send(new CreateSecretCommand({ Name: `${prefix}files/default/web/etc/app/token`, SecretString: FILE_SECRET }));
  await h.aws.ssm.send(new PutParameterCommand({ Name: PARAMETER, Value: PARAMETER_VALUE, Type: 'SecureString' }));
  await new ObjectStorageSecretStore(h.aws.s3, h.bucket, 'secret/', new KeyRing(recordSecretsKey('the history scan canary', OBJECT_KEY))).put('canary', OBJECT_VALUE);
  recordSecretValue('the history scan canary', RECORDED_VALUE);
  await applyConfig({ client: h.client, s3: h.aws.s3, text: configText(config), file: 'config.jsonc', actor: 'test' });
  const gate = new MutableLeadershipGate();
  gate.set({ leader: true, epoch: 1 });
  const { address } = await startAgentApiWorker(h, gate);
  fleet = new SimulatedFleet({ ec2: h.aws.ec2, shard, resolveAddress: () => address, stateRoot: mkdtempSync(join(tmpdir(), 'nstance-scan-fleet-')), pollMs: 300 }).start();
  await eventually('the agent registered', async () => (fleet.registered().length === 1 ? true : undefined), 90_000);
  for (const instance of await shardInstances(h.aws.ec2, shard)) {
    const attribute = await h.aws.ec2.send(new DescribeInstanceAttributeCommand({ InstanceId: instance.InstanceId, Attribute: 'userData' }));
    const userdata = Buffer.from(attribute.UserData?.Value ?? '', 'base64').toString('utf8');
    expect(userdata).toMatch(/--nonce eyJ/);
    launchedWith.push(...fragments(`the userdata ${instance.InstanceId} was launched with`, userdata, 24));
  }
  expect(launchedWith.length).toBeGreaterThan(0);
});

afterAll(async () => {
  await fleet?.stop();
  await terminateShardWorkflows(h.client, shard);
  await raw?.close();
  await h?.close();
});

async function secrets(): Promise<{ known: KnownSecret[]; unopened: string[] }> {
  const found = await knownSecrets(h.aws);
  return { known: [...found.secrets, ...launchedWith], unopened: found.unopened };
}

/** How many needles each kind of secret gave ("secret 40, parameter 12, ..."). */
function countBy(known: KnownSecret[]): string {
  const counts = new Map<string, number>();
  for (const s of known) {
    const kind = /^(object-storage secret|object-storage key|secret value|secret|parameter|userdata|the userdata|the payload codec key)/.exec(s.label)?.[1] ?? 'other';
    counts.set(kind, (counts.get(kind) ?? 0) + 1);
  }
  return [...counts].map(([kind, n]) => `${kind} ${n}`).join(', ');
}

function summary(findings: ScanFinding[]): string {
  return findings
    .slice(0, 30)
    .map((f) => `${f.workflowId} (run ${f.runId}) event ${f.eventId}: ${f.problem}`)
    .join('\n');
}

test('the scan finds a secret written without the codec (canary)', async () => {
  const caKey = (await h.aws.secrets.send(new GetSecretValueCommand({ SecretId: `${prefix}ca-key` }))).SecretString as string;
  // A client without the project's data converter: what a leak looks like. Nobody polls the queue.
  const plain = new Client({ connection: raw });
  const args = { caKey, fileSecret: FILE_SECRET, parameter: PARAMETER_VALUE, object: OBJECT_VALUE, recorded: RECORDED_VALUE, key: OBJECT_KEY.toString('base64'), payloadKey: TEST_PAYLOAD_KEY };
  const handle = await plain.workflow.start('historyScanCanary', { taskQueue: `history-scan-canary.${shard}`, workflowId: CANARY_ID, args: [args] });
  try {
    const report = await scanNamespace(raw, 'default', (await secrets()).known, { query: `WorkflowId = '${CANARY_ID}'` });
    const problems = report.findings.map((f) => f.problem);
    expect(problems).toContainEqual(expect.stringMatching(/^plaintext payload at .*workflowExecutionStartedEventAttributes\.input/));
    expect(problems).toContainEqual(`contains secret ${prefix}ca-key`);
    expect(problems).toContainEqual(`contains secret ${prefix}files/default/web/etc/app/token`);
    expect(problems).toContainEqual(`contains parameter ${PARAMETER}`);
    expect(problems).toContainEqual(`contains object-storage secret s3://${h.bucket}/cluster/secret/canary`);
    expect(problems).toContainEqual('contains object-storage key (the history scan canary)');
    expect(problems).toContainEqual('contains secret value (the history scan canary)');
    expect(problems).toContainEqual(`contains ${PAYLOAD_KEY_LABEL}`);
    expect(problems).toContain('contains a PEM private key');
  } finally {
    await handle.terminate('canary scanned');
  }
});

test('no history holds a plaintext payload or a known secret', async () => {
  await waitForOtherFiles(__filename, 30 * 60_000);
  const { known, unopened } = await secrets();
  expect(known.some((s) => s.label === `secret ${prefix}ca-key`)).toBe(true);
  expect(known.some((s) => s.label === `secret ${prefix}registration-key`)).toBe(true);
  // Every store is searched: each has at least the canary's secret.
  for (const kind of ['parameter /', 'object-storage secret s3://', 'object-storage key (', 'secret value (', PAYLOAD_KEY_LABEL]) expect(known.some((s) => s.label.startsWith(kind))).toBe(true);
  // Every object-storage secret was opened, so its plaintext is among what is searched for: a test making a key
  // records it (test/support/secret-ledger.ts).
  expect(unopened).toEqual([]);
  const started = Date.now();
  const report = await scanNamespace(raw, 'default', known, { exclude: (id) => id === CANARY_ID });
  process.stdout.write(
    `history scan: ${report.executions} executions, ${report.events} events, ${report.payloads} payloads (${report.encryptedPayloads} encrypted), ${known.length} known secrets (${countBy(known)}), ${Date.now() - started} ms\n`,
  );
  expect(summary(report.findings)).toBe('');
  // This file's own group and instance are among what was read, and their payloads were encrypted.
  expect(report.executions).toBeGreaterThanOrEqual(2);
  expect(report.encryptedPayloads).toBeGreaterThan(0);
});
