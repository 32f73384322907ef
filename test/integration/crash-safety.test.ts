import { TAG } from '../../common/names';
import { applyConfig } from '../../client/ops/apply';
import { waitForConvergence } from '../../client/ops/status';
import type { AuditEntry } from '../../common/types';
import type { SeedResult } from '../../scripts/seed-emulator';
import { awsError } from '../support/faults';
import { eventually, listKeys, readJson, shardInstances, tagOf } from '../support/emulator';
import { configText, seedShard, terminateShardWorkflows, testConfig } from '../support/fixtures';
import { createHarness, type Harness } from '../support/harness';

const shard = `crash-${Date.now().toString(36)}`;
const ref = { shard, tenant: 'default', group: 'web' };
let h: Harness;
let seed: SeedResult;

beforeAll(async () => {
  h = await createHarness({ shard, bucket: `nstance-${shard}` });
  seed = await seedShard(h);
  await h.startWorker();
});

afterAll(async () => {
  await terminateShardWorkflows(h.client, shard);
  await h.close();
});

const isAudit = (command: string, input: Record<string, unknown>) =>
  command === 'PutObject' && String(input.Key).includes('/audit/') && String(input.Key).includes('.instance.create.');

test('a launch that crashes right after RunInstances succeeded is retried without a second instance, and audit retries do not duplicate', async () => {
  // Attempt 1 of every launch "crashes" after AWS accepted it; EC2 then hides the new
  // instance from Describe for a while, so the retry's tag look-up misses it and only
  // the ClientToken (AWS's idempotency, emulated by the fault layer) prevents a duplicate.
  h.faults
    .emulateClientTokens()
    .hideNewInstances(1500)
    .failAfter('RunInstances', () => awsError('InternalError', 'injected: worker crashed after RunInstances', 'server'), 2)
    .failAfter(isAudit, () => awsError('InternalError', 'injected: crash after the audit write', 'server'), 2);

  await applyConfig({ client: h.client, s3: h.aws.s3, text: configText(testConfig(seed, { shard, bucket: h.bucket, size: 3 })), file: 'config.jsonc', actor: 'test' });
  const status = await waitForConvergence(h.client, ref, { timeoutMs: 90_000, size: 3, pollMs: 300 });

  const running = await eventually('3 instances', async () => {
    const found = await shardInstances(h.aws.ec2, shard, ['pending', 'running', 'stopped', 'stopping']);
    return found.length === 3 ? found : undefined;
  });
  // Exactly three launched in the emulator, ever: no terminated duplicate either.
  expect(await shardInstances(h.aws.ec2, shard, ['pending', 'running', 'stopped', 'stopping', 'shutting-down', 'terminated'])).toHaveLength(3);
  expect(running.map((i) => tagOf(i, TAG.instanceId)).sort()).toEqual(status.members.map((m) => m.instanceId).sort());
  // The injected failures really happened: two launches were attempted more than once.
  const injected = h.faults.callsOf('RunInstances').filter((c) => c.outcome === 'injected');
  expect(injected).toHaveLength(2);
  expect(h.faults.callsOf('RunInstances').length).toBeGreaterThan(3);

  const keys = await listKeys(h.aws.s3, h.bucket, `shard/${shard}/audit/`);
  const creates = (await Promise.all(keys.map((k) => readJson<AuditEntry>(h.aws.s3, h.bucket, k)))).filter((e) => e.action === 'instance.create');
  expect(creates).toHaveLength(3);
  expect(new Set(creates.flatMap((e) => e.instanceIds)).size).toBe(3);
  expect(h.faults.calls.filter((c) => isAudit(c.command, c.input) && c.outcome === 'injected')).toHaveLength(2);
});
