/**
 * A group workflow that no AWS failure can kill, and that a terminate cannot make
 * forget what it owns: a long outage of each AWS call it makes is shown as its last
 * error and survived; a run started without its state rebuilds its members before
 * deciding anything.
 */
import { signalGroupIfRunning } from '../../client/ops/groups-signal';
import { groupStatus, waitForConvergence } from '../../client/ops/status';
import { groupWorkflowId } from '../../common/names';
import { eventually } from '../support/emulator';
import { awsError } from '../support/faults';
import { useShard } from '../support/shard-fixture';

const fx = useShard('res', { worker: true, registrar: true });
const { ref } = fx;
const SIZE = 2;
/** Longer than a group activity's quick retries (3 attempts over a few seconds): the group's own step backoff has to take over. */
const OUTAGE_MS = 12_000;

const handle = () => fx.client.workflow.getHandle(groupWorkflowId(ref.shard, ref.tenant, ref.group));

async function failedRuns(): Promise<string[]> {
  const runs: string[] = [];
  const query = `WorkflowId = '${groupWorkflowId(ref.shard, ref.tenant, ref.group)}' AND ExecutionStatus IN ('Failed', 'TimedOut')`;
  for await (const run of fx.client.workflow.list({ query })) runs.push(run.runId);
  return runs;
}

/** Short intervals, so that every step of the group runs (and can fail) within an outage. */
const CONFIG = { size: SIZE, reconcileInterval: '2s', shardSettings: { image_refresh_interval: '2s' }, web: { load_balancers: ['web'], drain_timeout: '5s' } };

beforeAll(async () => {
  await fx.apply(CONFIG);
  await waitForConvergence(fx.client, ref, { timeoutMs: 90_000, size: SIZE, pollMs: 300 });
});

const outages: { call: string; step: string; matches: (command: string, input: Record<string, unknown>) => boolean }[] = [
  { call: 'S3 GetObject of the config', step: 'config', matches: (c, i) => c === 'GetObject' && String(i.Key).endsWith('config.jsonc') },
  // A failed image look-up keeps the last good id (launches go on) and says so.
  { call: 'EC2 DescribeImages', step: 'images', matches: (c) => c === 'DescribeImages' },
  { call: 'EC2 DescribeInstances', step: 'observe', matches: (c) => c === 'DescribeInstances' },
  { call: 'ELBv2 DescribeTargetHealth', step: 'targets', matches: (c) => c === 'DescribeTargetHealth' },
];

test.each(outages)('a long outage of $call is shown as the group\'s last error and survived; it ends with exactly its size', async ({ step, matches }) => {
  fx.faults.failBefore(matches, () => awsError('AccessDenied', `injected: ${step} outage`), 100_000);
  const outageEnds = Date.now() + OUTAGE_MS;
  await signalGroupIfRunning(fx.client, ref, { reason: 'manual', actor: 'test' });
  const shown = await eventually(`the ${step} failure shown`, async () => {
    const s = await groupStatus(fx.client, ref, { limit: 0 });
    return s.lastError?.startsWith(`${step}: `) ? s.lastError : undefined;
  }, OUTAGE_MS);
  expect(shown).toContain(`injected: ${step} outage`);
  await new Promise((r) => setTimeout(r, Math.max(0, outageEnds - Date.now())));
  expect((await handle().describe()).status.name).toBe('RUNNING');
  fx.faults.clear();

  await waitForConvergence(fx.client, ref, { timeoutMs: 120_000, size: SIZE, pollMs: 500 });
  await eventually('the error cleared', async () => ((await groupStatus(fx.client, ref, { limit: 0 })).lastError === undefined ? true : undefined), 30_000);
  // No run of the group ever failed (continue-as-new may have started new ones meanwhile).
  expect(await failedRuns()).toEqual([]);
  await fx.expectEmulatorMatchesGroups();
});

test('a terminated group workflow is rebuilt by the next apply: no new instance, none leaked, and nothing decided before it knows its members', async () => {
  const before = await waitForConvergence(fx.client, ref, { timeoutMs: 90_000, size: SIZE, pollMs: 300 });
  const members = before.members.map((m) => `${m.instanceId}=${m.ec2InstanceId}`).sort();
  await handle().terminate('test: lose the group state');
  const mark = fx.faults.calls.length;

  // The rebuild's own EC2 look-up fails for a while: the new run must wait, not create `size` new instances.
  fx.faults.failBefore('DescribeInstances', () => awsError('RequestLimitExceeded', 'injected: throttled'), 100_000);
  await fx.apply(CONFIG);
  const waiting = await eventually('the rebuild waiting', async () => {
    const s = await groupStatus(fx.client, ref, { limit: 0 }).catch(() => undefined);
    return s?.diagnostics?.rebuilding && s.lastError?.startsWith('rebuild: ') ? s : undefined;
  }, 30_000);
  expect(waiting.total).toBe(0);
  await new Promise((r) => setTimeout(r, 5000));
  expect(fx.faults.calls.slice(mark).filter((c) => c.command === 'RunInstances')).toEqual([]);
  fx.faults.clear();

  const after = await waitForConvergence(fx.client, ref, { timeoutMs: 90_000, size: SIZE, pollMs: 300 });
  expect(after.members.map((m) => `${m.instanceId}=${m.ec2InstanceId}`).sort()).toEqual(members);
  expect(after.members.every((m) => m.phase === 'in-service')).toBe(true);
  const launchedOrTerminated = fx.faults.calls.slice(mark).filter((c) => (c.command === 'RunInstances' || c.command === 'TerminateInstances') && c.outcome === 'ok');
  expect(launchedOrTerminated).toEqual([]);
  await fx.expectEmulatorMatchesGroups();
});
