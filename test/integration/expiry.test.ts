/**
 * Expiry's days-long timers on the time-skipping test server: the instance
 * workflows' own age timers fire after 21 and 30 (skipped) days. The test server
 * is its own Temporal (torn down with this file), so the suite's history scan
 * never sees it: this file scans its histories itself, under the same codec.
 */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { nstanceDataConverter } from '../../adapters/temporal/data-converter';
import { createActivities } from '../../activities';
import { createAwsClients, destroyAwsClients } from '../../adapters/aws/clients';
import { applyConfig } from '../../client/ops/apply';
import { scaleGroup } from '../../client/ops/scale';
import { groupStatus } from '../../client/ops/status';
import { SEARCH_ATTRIBUTES, shardTaskQueue } from '../../common/names';
import { temporal } from '@temporalio/proto';
import type { SeedResult } from '../../scripts/seed-emulator';
import { eventually, shardInstances } from '../support/emulator';
import { configText, seedShard, testConfig } from '../support/fixtures';
import { createHarness, workflowBundle, type Harness } from '../support/harness';
import { proveCallsAllowed } from '../support/iam-proof';
import { parseConfigText, type NstanceConfig } from '../../common/config';
import { Registrar } from '../support/registrar';
import { knownSecrets, scanNamespace } from '../support/history-scan';
import { stackEnv } from '../support/stack-env';

const shard = `exp-${Date.now().toString(36)}`;
const ref = { shard, tenant: 'default', group: 'web' };
let env: TestWorkflowEnvironment;
let h: Harness;
let seed: SeedResult;
let worker: Worker;
let running: Promise<void>;
let registrar: Registrar;
let applied: NstanceConfig | undefined;

beforeAll(async () => {
  h = await createHarness({ shard, bucket: `nstance-${shard}` });
  // The project's codec on both ends, as every worker and client of the suite runs.
  env = await TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path', path: stackEnv().testServerBin } }, client: { dataConverter: nstanceDataConverter() } });
  await env.connection.operatorService.addSearchAttributes({
    namespace: env.namespace ?? 'default',
    searchAttributes: Object.fromEntries(SEARCH_ATTRIBUTES.map((name) => [name, temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD])),
  });
  seed = await seedShard(h);
  worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue: shardTaskQueue(shard),
    workflowBundle: await workflowBundle(),
    dataConverter: nstanceDataConverter(),
    activities: createActivities({ aws: h.workerAws, bucket: h.bucket, temporal: env.client, pollIntervalMs: 200 }),
  });
  running = worker.run();
  registrar = new Registrar(env.client, ref).start();
});

afterAll(async () => {
  await registrar?.stop();
  worker?.shutdown();
  await running;
  await env?.teardown();
  await h?.close();
  // The IAM proof: every AWS call of the expiry replacements (launch, drain, terminate), against the generated policy.
  if (applied && process.env.NSTANCE_IAM_PROOF !== 'off') await proveCallsAllowed(h.faults.calls, [applied]);
});

async function members() {
  return (await groupStatus(env.client, ref)).members;
}

test('eligible expiry (21 days) replaces both, one at a time', async () => {
  const config = testConfig(seed, {
    shard,
    bucket: h.bucket,
    size: 2,
    reconcileInterval: '24h',
    shardSettings: { expiry: { eligible_age: '21d', forced_age: '30d' }, garbage_collection: { interval: '24h', registration_timeout: '60d' } },
  });
  await applyConfig({ client: env.client, s3: h.aws.s3, text: configText(config), file: 'config.jsonc', actor: 'test' });
  applied = parseConfigText(configText(config), 'config.jsonc');
  const first = await eventually('2 in service', async () => {
    const m = await members();
    return m.length === 2 && m.every((x) => x.phase === 'in-service') ? m : undefined;
  });

  const mark = h.faults.calls.length;
  await env.sleep('21d');
  // Both became eligible at once; they are replaced one after the other, oldest first.
  const replaced = await eventually('both originals replaced', async () => {
    const m = await members();
    const originals = m.filter((x) => first.some((f) => f.instanceId === x.instanceId));
    return originals.length === 0 && m.length === 2 && m.every((x) => x.phase === 'in-service') ? m : undefined;
  }, 90_000);
  const alive = await shardInstances(h.aws.ec2, shard);
  expect(alive.map((i) => i.InstanceId).sort()).toEqual(replaced.map((m) => m.ec2InstanceId).sort());
  expect(replaced.every((m) => m.expiry === undefined)).toBe(true);
  // Read back from the EC2 calls: one replacement at a time (never two extra instances). Which goes first is the
  // one whose age mark the group heard of first: both entered service within a moment, and expiry counts from
  // entering service (the oldest-first rule among members eligible together is a unit test of the decision).
  const sequence = h.faults.calls
    .slice(mark)
    .filter((c) => c.outcome === 'ok' && (c.command === 'RunInstances' || c.command === 'TerminateInstances'))
    .map((c) => (c.command === 'RunInstances' ? 'launch' : `terminate ${(c.input.InstanceIds as string[]).join(',')}`));
  const terminated = sequence.filter((s) => s.startsWith('terminate ')).map((s) => s.slice('terminate '.length));
  expect(terminated.sort()).toEqual(first.map((m) => m.ec2InstanceId).sort());
  expect(sequence.map((s) => s.split(' ')[0])).toEqual(['launch', 'terminate', 'launch', 'terminate']);
});

test('forced expiry (30 days) replaces even while the group is not calm', async () => {
  const start = await eventually('2 in service', async () => {
    const m = await members();
    return m.length === 2 && m.every((x) => x.phase === 'in-service') ? m : undefined;
  });
  // Not calm: a third member whose agent never registers (its registration timeout is 60 days).
  registrar.silent.add('*');
  await scaleGroup({ client: env.client, s3: h.aws.s3, bucket: h.bucket, group: ref, size: 3, actor: 'test' });
  const silent = await eventually('the silent member running', async () => {
    const m = await members();
    return m.find((x) => !start.some((s) => s.instanceId === x.instanceId) && x.phase === 'running');
  });
  registrar.silent.add(silent.instanceId);
  registrar.silent.delete('*');

  // 21 days on: eligible, but with a member not in service the group is not calm: nothing is replaced.
  await env.sleep('21d');
  await new Promise((r) => setTimeout(r, 2000));
  expect((await members()).map((x) => x.instanceId).sort()).toEqual([...start.map((x) => x.instanceId), silent.instanceId].sort());

  // 30 days: forced, replaced regardless (one at a time, each once its replacement serves).
  await env.sleep('9d');
  const after = await eventually('forced replacements in service', async () => {
    const m = await members();
    const serving = m.filter((x) => x.phase === 'in-service');
    return m.length === 3 && serving.length === 2 && !serving.some((x) => start.some((s) => s.instanceId === x.instanceId)) ? m : undefined;
  }, 90_000);
  expect(after.map((x) => x.instanceId)).toContain(silent.instanceId);
  const alive = await shardInstances(h.aws.ec2, shard);
  expect(alive.map((i) => i.InstanceId).sort()).toEqual(after.map((m) => m.ec2InstanceId).sort());
});

test("the time-skipping server's histories hold no plaintext payload and no known secret", async () => {
  // The test's own reads of every secret and config in the account, not the project's: kept off the IAM proof's call log.
  const reader = createAwsClients({ region: stackEnv().region, endpoint: stackEnv().awsEndpoint });
  const { secrets } = await knownSecrets(reader).finally(() => destroyAwsClients(reader));
  const report = await scanNamespace(env.connection, env.namespace ?? 'default', secrets);
  process.stdout.write(`expiry history scan: ${report.executions} executions, ${report.events} events, ${report.payloads} payloads (${report.encryptedPayloads} encrypted)\n`);
  expect(report.findings.slice(0, 20).map((f) => `${f.workflowId} event ${f.eventId}: ${f.problem}`)).toEqual([]);
  // The group, and the instances it made and replaced over 30 days, were read, and their payloads were encrypted.
  expect(report.executions).toBeGreaterThanOrEqual(6);
  expect(report.encryptedPayloads).toBeGreaterThan(20);
});
