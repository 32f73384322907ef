import { TAG } from '../../common/names';
import { waitForConvergence } from '../../client/ops/status';
import type { AuditEntry } from '../../common/types';
import { awsError } from '../support/faults';
import { eventually, listKeys, readJson, shardInstances, tagOf } from '../support/emulator';
import { useShard } from '../support/shard-fixture';

const fx = useShard('crash', { worker: true });
const { shard, ref } = fx;

const isAudit = (command: string, input: Record<string, unknown>) =>
  command === 'PutObject' && String(input.Key).includes('/audit/') && String(input.Key).includes('.instance.create.');

test('a launch that crashes right after RunInstances succeeded is retried without a second instance, and audit retries do not duplicate', async () => {
  // Attempt 1 of every launch "crashes" after AWS accepted it; EC2 then hides the new
  // instance from Describe for a while, so the retry's tag look-up misses it and only
  // the ClientToken (AWS's idempotency, emulated by the fault layer) prevents a duplicate.
  fx.faults
    .emulateClientTokens()
    .hideNewInstances(1500)
    .failAfter('RunInstances', () => awsError('InternalError', 'injected: worker crashed after RunInstances', 'server'), 2)
    .failAfter(isAudit, () => awsError('InternalError', 'injected: crash after the audit write', 'server'), 2);

  await fx.apply({ size: 3 });
  const status = await waitForConvergence(fx.client, ref, { timeoutMs: 90_000, size: 3, pollMs: 300 });

  const running = await eventually('3 instances', async () => {
    const found = await shardInstances(fx.aws.ec2, shard, ['pending', 'running', 'stopped', 'stopping']);
    return found.length === 3 ? found : undefined;
  });
  // Exactly three launched in the emulator, ever: no terminated duplicate either.
  expect(await shardInstances(fx.aws.ec2, shard, ['pending', 'running', 'stopped', 'stopping', 'shutting-down', 'terminated'])).toHaveLength(3);
  expect(running.map((i) => tagOf(i, TAG.instanceId)).sort()).toEqual(status.members.map((m) => m.instanceId).sort());
  // The injected failures really happened: two launches were attempted more than once.
  const injected = fx.faults.callsOf('RunInstances').filter((c) => c.outcome === 'injected');
  expect(injected).toHaveLength(2);
  expect(fx.faults.callsOf('RunInstances').length).toBeGreaterThan(3);

  const keys = await listKeys(fx.aws.s3, fx.bucket, `shard/${shard}/audit/`);
  const creates = (await Promise.all(keys.map((k) => readJson<AuditEntry>(fx.aws.s3, fx.bucket, k)))).filter((e) => e.action === 'instance.create');
  expect(creates).toHaveLength(3);
  expect(new Set(creates.flatMap((e) => e.instanceIds)).size).toBe(3);
  expect(fx.faults.calls.filter((c) => isAudit(c.command, c.input) && c.outcome === 'injected')).toHaveLength(2);
});
