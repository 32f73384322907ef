/**
 * `nstance secrets rotate-key` as a durable workflow: 300 object-storage secrets under the old
 * key, a rotation in pages of 10 (so it spans many activities and continues as new), its worker
 * process SIGKILLed mid-rotation, then a new worker completes it. At the kill, and after, every
 * secret opens with one of the keys; at the end every one opens with the new key, none with the
 * old, and every value is what it was. Also `nstance secrets` itself: put, redacted get, list, delete.
 * The IAM proof covers the file: every call through the harness's fault layer (the in-process worker's and the
 * test's own reads) is evaluated against the policy generated for each config the shard ran (afterAll).
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { ensureClusterPki } from '../../adapters/pki/cluster-ca';
import { ObjectStore } from '../../adapters/s3/objects';
import { decryptSecret, KeyRing } from '../../adapters/secrets/crypto';
import { ObjectStorageSecretStore } from '../../adapters/secrets/object-storage';
import { ShardConfigStore } from '../../adapters/s3/config-store';
import { s3Keys } from '../../common/names';
import type { AuditEntry } from '../../common/types';
import { followKeyRotation, startKeyRotation } from '../../client/ops/secrets';
import { keyRotationProgressQuery, keyRotationWorkflowId, type KeyRotationProgress } from '../../workflows/key-rotation-api';
import { runCli } from '../support/cli';
import { STACK_UI_VAR } from '../support/global-setup';
import { eventually, listKeys, readJson } from '../support/emulator';
import { configText } from '../support/fixtures';
import { createHarness, workflowBundle, type Harness } from '../support/harness';
import { spawnWorker, type WorkerProcess } from '../support/processes';
import { stackEnv } from '../support/stack-env';
import { parseConfigText, type NstanceConfig } from '../../common/config';
import { proveCallsAllowed } from '../support/iam-proof';
import { recordHistory } from '../support/record-histories';
import { recordSecretsKey, recordSecretValue } from '../support/secret-ledger';

const run = Date.now().toString(36);
const shard = `rot-${run}`;
const COUNT = 300;
/** Plus the CA key and the registration key. */
const STORED = COUNT + 2;
const oldKey = recordSecretsKey('key-rotation: the old key', randomBytes(32));
const newKey = recordSecretsKey('key-rotation: the new key', randomBytes(32));
const NEW_VAR = `NSTANCE_TEST_NEW_KEY_${run.toUpperCase()}`;
const OLD_VAR = `NSTANCE_TEST_OLD_KEY_${run.toUpperCase()}`;

let h: Harness;
let spawned: WorkerProcess | undefined;
/** Every config the shard ran: the file's AWS calls must be allowed by the generated policy of one of them. */
const ran: NstanceConfig[] = [];
const writtenConfig = (value: Record<string, unknown>): string => {
  const text = configText(value);
  ran.push(parseConfigText(text, 'config.jsonc'));
  return text;
};
const values = new Map<string, string>();

function config(bucket: string): Record<string, unknown> {
  return {
    cluster: {
      id: 'rot',
      storage: { provider: 's3', bucket },
      secrets: {
        provider: 'object-storage',
        encryption_key: { provider: 'env', source: NEW_VAR },
        old_encryption_keys: [{ provider: 'env', source: OLD_VAR }],
      },
    },
    shard: { id: shard, infra: { provider: 'aws', region: stackEnv().region, zone: `${stackEnv().region}a` }, subnet_pools: { private: ['subnet-0aaa'] } },
  };
}

async function blobOf(name: string): Promise<Buffer> {
  const out = await h.aws.s3.send(new GetObjectCommand({ Bucket: h.bucket, Key: `cluster/secret/${name}` }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

/** How many secrets open with the new key, with the old one, with neither (and whether each value is intact). */
async function census(): Promise<{ underNew: number; underOld: number; neither: number; wrongValue: number }> {
  const counts = { underNew: 0, underOld: 0, neither: 0, wrongValue: 0 };
  const names = [...values.keys()];
  for (let i = 0; i < names.length; i += 25) {
    await Promise.all(
      names.slice(i, i + 25).map(async (name) => {
        const blob = await blobOf(name);
        const plain = decryptSecret(blob, newKey) ?? decryptSecret(blob, oldKey);
        if (decryptSecret(blob, newKey)) counts.underNew++;
        else if (decryptSecret(blob, oldKey)) counts.underOld++;
        else counts.neither++;
        if (plain && plain.toString() !== values.get(name)) counts.wrongValue++;
      }),
    );
  }
  return counts;
}

beforeAll(async () => {
  process.env[NEW_VAR] = newKey.toString('base64');
  process.env[OLD_VAR] = oldKey.toString('base64');
  h = await createHarness({ shard, bucket: `nstance-${shard}` });
  await new ShardConfigStore(new ObjectStore({ s3: h.aws.s3, bucket: h.bucket }), shard).writeConfig(writtenConfig(config(h.bucket)), { absent: true });
  // Written under the old key, as a cluster has them before the rotation.
  const before = new ObjectStorageSecretStore(h.aws.s3, h.bucket, 'secret/', new KeyRing(oldKey));
  for (let i = 0; i < COUNT; i++) values.set(`files/default/web/etc/app/s${String(i).padStart(4, '0')}`, `value-${i}-${randomBytes(6).toString('hex')}`);
  // The cluster PKI lives in the store too (a worker serving the agent API creates it): made first, so the count is fixed.
  // Through the worker's clients: creating the PKI is the worker's use of the store (the seeding around it is the test's).
  const asWorker = new ObjectStorageSecretStore(h.workerAws.s3, h.bucket, 'secret/', new KeyRing(oldKey));
  await ensureClusterPki({ secrets: asWorker, objects: new ObjectStore({ s3: h.workerAws.s3, bucket: h.bucket }) }, { clusterId: 'rot' });
  const entries = [...values];
  for (let i = 0; i < entries.length; i += 25) await Promise.all(entries.slice(i, i + 25).map(([name, value]) => before.put(name, value)));
});

afterAll(async () => {
  spawned?.kill('SIGKILL');
  await h?.close();
  delete process.env[NEW_VAR];
  delete process.env[OLD_VAR];
  if (!h || process.env.NSTANCE_IAM_PROOF === 'off') return;
  // The rotation's own pages (the in-process worker's listing of cluster/secret/) are among the calls proven.
  expect(h.faults.callsOf('ListObjectsV2').some((c) => String(c.input.Prefix).startsWith('cluster/secret/') && c.auth)).toBe(true);
  await proveCallsAllowed(h.faults.calls, ran);
});

test('a rotation killed with its worker resumes on another and leaves every secret under the new key only', async () => {
  const env = stackEnv();
  const logDir = fs.mkdtempSync(path.join(process.env.NSTANCE_TEST_STACK_LOGS ?? os.tmpdir(), `rotation-${shard}-`));
  const bundlePath = path.join(logDir, 'workflow-bundle.js');
  fs.writeFileSync(bundlePath, (await workflowBundle()).code);
  process.env.NSTANCE_LEADERSHIP = 'off';
  try {
    spawned = await spawnWorker({ workerId: 'rot-w1', ec2InstanceId: 'i-none', shard, bucket: h.bucket, temporalAddress: env.temporalAddress, awsEndpoint: env.awsEndpoint, region: env.region, logDir, workflowBundlePath: bundlePath });
  } finally {
    delete process.env.NSTANCE_LEADERSHIP;
  }

  const handle = await startKeyRotation(h.client, { shard, actor: 'test:rotation', pageSize: 10, pagesPerRun: 5 });
  // Asking again attaches to the running rotation: still one.
  expect((await startKeyRotation(h.client, { shard, actor: 'test:again', pageSize: 10, pagesPerRun: 5 })).firstExecutionRunId).toBe(handle.firstExecutionRunId);

  const atKill = await eventually(
    'a third of the secrets re-encrypted',
    async () => {
      const p = await h.client.workflow.getHandle(keyRotationWorkflowId(shard)).query(keyRotationProgressQuery).catch(() => undefined);
      return p && p.totals.rewritten >= COUNT / 3 ? p : undefined;
    },
    120_000,
    100,
  );
  spawned.kill('SIGKILL');
  await spawned.exited;
  expect(atKill.plan).toMatchObject({ keyId: new KeyRing(newKey).currentId, oldKeyIds: [new KeyRing(oldKey).currentId], total: STORED });

  // Interrupted for real: some under each key, none under neither, no value changed.
  const middle = await census();
  expect(middle.underNew).toBeGreaterThan(0);
  expect(middle.underOld).toBeGreaterThan(0);
  expect(middle).toMatchObject({ neither: 0, wrongValue: 0 });

  await h.startWorker();
  const progress: KeyRotationProgress[] = [];
  const result = await followKeyRotation(h.client, shard, (p) => progress.push(p), 200);

  expect(result.status).toBe('done');
  expect(result.passes).toBe(2); // one that re-encrypted, one that found nothing left to do
  expect(result.lastPass).toEqual({ scanned: STORED, rewritten: 0, current: STORED, missing: 0, unreadable: 0 });
  expect(result.totals.rewritten).toBeLessThanOrEqual(STORED);
  expect(await census()).toEqual({ underNew: COUNT, underOld: 0, neither: 0, wrongValue: 0 });
  for (const name of ['ca-key', 'registration-key']) {
    const blob = await blobOf(name);
    expect([decryptSecret(blob, newKey)?.toString().includes('PRIVATE KEY'), decryptSecret(blob, oldKey)]).toEqual([true, undefined]);
  }
  // Paged with a cursor and continued as new (31 pages a pass, 5 per run).
  expect(Math.max(...progress.map((p) => p.runs))).toBeGreaterThanOrEqual(6);
  // A replay fixture (encrypted payloads): the last run, carried from the runs before, ending the rotation.
  recordHistory(keyRotationWorkflowId(shard), 'key-rotation-resumed');

  // Audited: when it started, and how it ended.
  const audits = await Promise.all(
    (await listKeys(h.aws.s3, h.bucket, s3Keys.auditPrefix(shard))).filter((k) => k.includes('secrets.rotate-key')).map((k) => readJson<AuditEntry>(h.aws.s3, h.bucket, k)),
  );
  expect(audits.map((a) => a.action).sort()).toEqual(['secrets.rotate-key.finished', 'secrets.rotate-key.started']);
  expect(audits.find((a) => a.action === 'secrets.rotate-key.finished')?.details).toMatchObject({ status: 'done', keyId: new KeyRing(newKey).currentId });
  expect(JSON.stringify(audits)).not.toContain(values.values().next().value as string);

  // Again: idempotent, nothing to re-encrypt.
  await startKeyRotation(h.client, { shard, actor: 'test:rerun', pageSize: 100 });
  const rerun = await followKeyRotation(h.client, shard, () => undefined, 200);
  expect(rerun).toMatchObject({ status: 'done', passes: 1, totals: { rewritten: 0, current: STORED } });
}, 300_000);

test('nstance secrets put, get (redacted unless --reveal), list and delete, audited without the value', async () => {
  const scope = ['--shard', shard, '--bucket', h.bucket];
  const name = 'files/default/web/etc/app/cli-token';
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nstance-secret-')), 'v');
  // Deleted below: recorded, so the history scan still looks for it.
  fs.writeFileSync(file, recordSecretValue('key-rotation: the CLI secret', 'cli-s3cret-value'));
  expect(await runCli('secrets', 'put', name, '--file', file, ...scope)).toMatchObject({ code: 0, stdout: expect.stringContaining(`created ${name}`) });
  const redacted = await runCli('secrets', 'get', name, ...scope);
  expect(redacted.code).toBe(0);
  expect(redacted.stdout).toContain('<redacted, 16 bytes>');
  expect(redacted.stdout).not.toContain('cli-s3cret');
  expect((await runCli('secrets', 'get', name, '--reveal', ...scope)).stdout).toBe('cli-s3cret-value\n');
  expect(decryptSecret(await blobOf(name), newKey)?.toString()).toBe('cli-s3cret-value');
  const listed = await runCli('secrets', 'list', 'files/default/web/etc/app/c', '--json', ...scope);
  expect(JSON.parse(listed.stdout)).toEqual([{ name, location: `s3://${h.bucket}/cluster/secret/${name}` }]);
  expect((await runCli('secrets', 'delete', name, ...scope)).code).toBe(0);
  expect(await runCli('secrets', 'get', name, ...scope)).toMatchObject({ code: 1, stderr: expect.stringContaining(`no secret "${name}"`) });
  const audits = await eventually('audit entries', async () => {
    const keys = (await listKeys(h.aws.s3, h.bucket, s3Keys.auditPrefix(shard))).filter((k) => /secrets\.(put|delete)/.test(k));
    return keys.length === 2 ? Promise.all(keys.map((k) => readJson<AuditEntry>(h.aws.s3, h.bucket, k))) : undefined;
  });
  expect(audits.map((a) => a.action).sort()).toEqual(['secrets.delete', 'secrets.put']);
  expect(JSON.stringify(audits)).not.toContain('cli-s3cret');
});

test("nstance secrets rotate-key shows its progress line by line, and the workflow's current details say where it is", async () => {
  // More secrets under the old key (a writer still on it): something for this rotation to do.
  const before = new ObjectStorageSecretStore(h.aws.s3, h.bucket, 'secret/', new KeyRing(oldKey));
  const added = 60;
  for (let i = 0; i < added; i += 20) {
    await Promise.all(
      Array.from({ length: 20 }, (_, j) => i + j).map((n) => {
        const name = `files/default/web/etc/app/late${String(n).padStart(3, '0')}`;
        values.set(name, `late-${n}`);
        return before.put(name, `late-${n}`);
      }),
    );
  }
  const total = STORED + added;
  const workflow = h.client.workflow.getHandle(keyRotationWorkflowId(shard));
  const details = new Set<string>();
  let cliDone = false;
  const watching = (async () => {
    while (!cliDone) {
      const meta = await workflow.query<{ currentDetails?: string }>('__temporal_workflow_metadata').catch(() => undefined);
      if (meta?.currentDetails) details.add(meta.currentDetails);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  const out = await runCli('secrets', 'rotate-key', '--shard', shard, '--page-size', '10').finally(() => (cliDone = true));
  await watching;
  expect(out.code).toBe(0);
  const newId = new KeyRing(newKey).currentId;
  expect(out.stdout).toContain(`key rotation done: every secret checked in 2 pass(es); ${added} re-encrypted under key ${newId}`);

  // Without a terminal: one line per change, on stderr (a terminal gets a bar instead), each saying the pass, how far it is and how many were re-encrypted.
  const lines = out.stderr.trim().split('\n');
  const format = /^pass (\d) \((planning|rotating|verifying|done)\): (\d+)\/(\d+) secrets, (\d+) re-encrypted$/;
  for (const line of lines) expect(line).toMatch(format);
  // Before its plan (the count of secrets), a first line may say it is planning; a last poll may catch it done.
  const parsed = lines
    .map((line) => format.exec(line)!)
    .map((m) => ({ pass: Number(m[1]), phase: m[2], scanned: Number(m[3]), total: Number(m[4]), rewritten: Number(m[5]) }))
    .filter((p) => p.phase !== 'planning');
  expect(parsed.length).toBeGreaterThanOrEqual(3);
  expect(new Set(parsed.map((p) => p.total))).toEqual(new Set([total]));
  expect(parsed.some((p) => p.pass === 1 && p.phase === 'rotating' && p.scanned > 0 && p.scanned < total)).toBe(true);
  for (let i = 1; i < parsed.length; i++) {
    // Passes only move on; within one, the count only grows; re-encrypted in all never shrinks.
    expect(parsed[i].pass).toBeGreaterThanOrEqual(parsed[i - 1].pass);
    if (parsed[i].pass === parsed[i - 1].pass) expect(parsed[i].scanned).toBeGreaterThanOrEqual(parsed[i - 1].scanned);
    expect(parsed[i].rewritten).toBeGreaterThanOrEqual(parsed[i - 1].rewritten);
  }
  expect(parsed.at(-1)!.rewritten).toBeLessThanOrEqual(added);

  // The Web UI's current details, as it read them while the rotation ran, and at the end.
  const seen = [...details];
  expect(seen.some((d) => d.startsWith(`**Key rotation** to key \`${newId}\` (rotating, pass 1)`) && /\n\n\d+ \/ \d+ secrets this pass; \d+ re-encrypted in all, 0 unreadable\n\n/.test(d))).toBe(true);
  const final = (await workflow.query<{ currentDetails?: string }>('__temporal_workflow_metadata')).currentDetails;
  expect(final).toBe(
    [
      `**Key rotation** to key \`${newId}\` (done, pass 2)`,
      `${total} / ${total} secrets this pass; ${added} re-encrypted in all, 0 unreadable`,
      `from keys \`${new KeyRing(oldKey).currentId}\` at s3://${h.bucket}/cluster/secret/`,
    ].join('\n\n'),
  );
  expect(await census()).toMatchObject({ underOld: 0, neither: 0, wrongValue: 0 });
});

test('rotate-key on a provider with its own KMS key fails at once, saying why', async () => {
  const store = new ShardConfigStore(new ObjectStore({ s3: h.aws.s3, bucket: h.bucket }), shard);
  const current = await store.readConfig();
  const kms = config(h.bucket) as { cluster: { secrets: unknown } };
  kms.cluster.secrets = { provider: 'aws-secrets-manager', prefix: `nstance/${shard}/` };
  await store.writeConfig(writtenConfig(kms), { etag: current!.etag });
  const out = await runCli('secrets', 'rotate-key', '--shard', shard, '--json');
  expect(out.code).toBe(1);
  expect(out.stderr).toContain('key rotation failed: cluster.secrets.provider is "aws-secrets-manager": rotate-key re-encrypts object-storage secrets');

  // For a human: the Web UI link of the run it started, printed before it follows the run (which fails here too).
  const ui = process.env[STACK_UI_VAR] ?? 'http://127.0.0.1:8233';
  const shown = await runCli('secrets', 'rotate-key', '--shard', shard, '--ui-url', ui);
  expect(shown.code).toBe(1);
  const { runId } = await h.client.workflow.getHandle(keyRotationWorkflowId(shard)).describe();
  expect(shown.stdout).toContain(`Web UI: ${ui}/namespaces/default/workflows/${encodeURIComponent(keyRotationWorkflowId(shard))}/${runId}/history`);
  expect(shown.stderr).toContain('key rotation failed: cluster.secrets.provider is "aws-secrets-manager"');
});
