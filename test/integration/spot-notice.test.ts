/**
 * Spot interruption end to end, from the agent's own probe: each simulated agent polls
 * its own fake IMDS (IMDSv2) exactly as `nstance agent` does on EC2. When one starts
 * answering spot/instance-action, the agent reports the notice with its deadline, the
 * agent API signals the transition, and the group replaces the instance:
 * create-before-destroy while the deadline leaves time for a full drain, drained at
 * once when it does not. Everything asserted is read back from Temporal and moto.
 */
import { createPrivateKey } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { mintNonce } from '../../adapters/pki/nonce';
import { SimulatedFleet } from '../../client/agent/fleet';
import { readClusterCa } from '../../client/agent/fleet-start';
import { groupStatus } from '../../client/ops/status';
import { instanceWorkflowId } from '../../common/names';
import type { AuditEntry, GroupStatus, Member } from '../../common/types';
import type { HealthTransition, TerminateRequest } from '../../workflows/definitions';
import { MutableLeadershipGate } from '../../workers/leadership/gate';
import { startAgentApiWorker } from '../support/agent-api-worker';
import { runCli, type CliResult } from '../support/cli';
import { eventually, listKeys, readJson, shardInstances } from '../support/emulator';
import { FakeImds } from '../support/fake-imds';
import { signalsIn, startedAt } from '../support/history';
import { useShard } from '../support/shard-fixture';

const fx = useShard('spot');
const { shard, ref } = fx;
/** The drain timeout of default/web; the two scenarios put the deadline on either side of it. */
const DRAIN_TIMEOUT_MS = 60_000;
const imds = new FakeImds();
const gate = new MutableLeadershipGate();
let fleet: SimulatedFleet | undefined;
/** Where the agent API listens (userdata names the leader IP). */
let address = '';

beforeAll(async () => {
  const config = fx.config({ size: 2, web: { load_balancers: ['web'], drain_timeout: `${DRAIN_TIMEOUT_MS / 1000}s` } }) as { templates: { web: { userdata: { content: string } } } };
  config.templates.web.userdata.content = '#!/bin/bash\n/opt/nstance/agent --register {{ .Server.RegistrationAddr }} --nonce {{ .Nonce }}\n';
  // First: the agent API starts only once the shard's config names the secret prefix of the cluster CA.
  await fx.apply(config);
  gate.set({ leader: true, epoch: 1 });
  ({ address } = await startAgentApiWorker(fx.h, gate));
  await imds.start();
  // Every instance's agent has its own IMDS (a prefix of the fake, named by its EC2 id), which answers 404 until told otherwise.
  fleet = new SimulatedFleet({
    ec2: fx.aws.ec2,
    shard,
    resolveAddress: () => address,
    stateRoot: mkdtempSync(join(tmpdir(), 'nstance-spot-')),
    pollMs: 300,
    imdsUrl: (ec2InstanceId) => imds.url(ec2InstanceId),
    noticePollMs: 500,
  }).start();
});

afterAll(async () => {
  await fleet?.stop();
  await imds.close();
});

/** `size` members in service, none leaving or being replaced, and the emulator holding exactly them. */
async function settled(size: number): Promise<GroupStatus> {
  const status = await eventually(`${size} settled members in service`, async () => {
    const s = await groupStatus(fx.client, ref);
    const ok = s.members.length === size && s.members.every((m) => m.phase === 'in-service' && !m.leaving && !m.replacing);
    return ok ? s : undefined;
  }, 90_000);
  await fx.expectEmulatorMatchesGroups();
  return status;
}

/** The position of the first AWS call of `command` naming `id`, in the fault layer's log. */
function callIndex(command: string, id: string): number {
  return fx.faults.calls.findIndex((c) => c.command === command && JSON.stringify(c.input).includes(id));
}

async function terminateAudit(instanceId: string): Promise<AuditEntry | undefined> {
  const keys = await listKeys(fx.aws.s3, fx.bucket, `shard/${shard}/audit/`);
  const entries = await Promise.all(keys.map((k) => readJson<AuditEntry>(fx.aws.s3, fx.bucket, k)));
  return entries.find((e) => e.action === 'instance.terminate' && e.instanceIds?.includes(instanceId));
}

/** A deadline `ms` from now, in whole seconds as IMDS gives it. */
function deadlineIn(ms: number): number {
  return Math.ceil((Date.now() + ms) / 1000) * 1000;
}

/**
 * The IMDS at `imdsPrefix` (by default the one the fleet's agent of `victim` polls) starts
 * announcing the interruption of `victim`, one of `before`; `announce` runs then. Waits until
 * `victim` is replaced: gone from the group, its workflow finished, its instance terminated in
 * moto, the group settled at size. Returns the replacement.
 */
async function interrupt(before: GroupStatus, victim: Member, deadlineMs: number, imdsPrefix = victim.ec2InstanceId as string, announce?: () => Promise<void>): Promise<Member> {
  const ec2Id = victim.ec2InstanceId as string;
  imds.setInstanceAction(imdsPrefix, { action: 'terminate', time: new Date(deadlineMs).toISOString().replace('.000Z', 'Z') });
  await announce?.();
  const handle = fx.client.workflow.getHandle(instanceWorkflowId(shard, victim.instanceId));
  await eventually('the noticed instance workflow finished', async () => ((await handle.describe()).status.name === 'COMPLETED' ? true : undefined), 90_000);
  await eventually(`${ec2Id} terminated in the emulator`, async () => {
    const gone = await shardInstances(fx.aws.ec2, shard, ['shutting-down', 'terminated']);
    return gone.some((i) => i.InstanceId === ec2Id) ? true : undefined;
  });
  const after = await settled(2);
  expect(after.members.map((m) => m.instanceId)).not.toContain(victim.instanceId);

  // The agent read the notice from IMDS (with a session token) and the workflow heard it once, with its deadline.
  expect(imds.requestsOf(imdsPrefix).some((r) => r.method === 'GET' && r.token && r.status === 200)).toBe(true);
  const health = await signalsIn<HealthTransition>(fx.client, handle.workflowId, 'instanceHealth');
  // Exactly one notice. (On a loaded machine a late report can also flag the member unhealthy and healthy
  // again before it: those transitions are the health tracker's, tested on their own.)
  expect(health.map((s) => s.arg).filter((t) => t.status === 'termination-notice')).toEqual([
    expect.objectContaining({ status: 'termination-notice', deadline: new Date(deadlineMs).toISOString(), reason: 'spot interruption (terminate)' }),
  ]);
  // Drained (deregistered from the NLB) before it was terminated, and audited as a spot interruption.
  expect(callIndex('DeregisterTargets', ec2Id)).toBeGreaterThanOrEqual(0);
  expect(callIndex('TerminateInstances', ec2Id)).toBeGreaterThan(callIndex('DeregisterTargets', ec2Id));
  expect(await terminateAudit(victim.instanceId)).toMatchObject({ details: { reason: 'termination-notice', drained: true } });

  const fresh = after.members.filter((m) => !before.members.some((b) => b.instanceId === m.instanceId));
  expect(fresh).toHaveLength(1);
  return fresh[0];
}

test('a notice with time to spare (deadline beyond the drain timeout): the replacement serves first, then the noticed instance drains', async () => {
  const before = await settled(2);
  const victim = before.members[0];
  const replacement = await interrupt(before, victim, deadlineIn(10 * 60_000));
  // Create-before-destroy: the group released the noticed instance only once its replacement was in service,
  // i.e. registered in the target group, before the noticed one was deregistered.
  expect(callIndex('RegisterTargets', replacement.ec2InstanceId as string)).toBeGreaterThanOrEqual(0);
  expect(callIndex('RegisterTargets', replacement.ec2InstanceId as string)).toBeLessThan(callIndex('DeregisterTargets', victim.ec2InstanceId as string));
});

test('a notice inside the drain timeout (as a 2-minute spot notice is): drained at once, not waiting for the replacement, and no later than the deadline', async () => {
  const before = await settled(2);
  const victim = before.members[0];
  // The NLB would keep the target draining for the whole drain timeout: the drain must stop at the deadline.
  fx.faults.keepDraining(victim.ec2InstanceId as string);
  const deadlineMs = deadlineIn(20_000);
  const replacement = await interrupt(before, victim, deadlineMs);
  // The group told the noticed instance to drain before it even started the replacement's workflow.
  const [terminate] = await signalsIn<TerminateRequest>(fx.client, instanceWorkflowId(shard, victim.instanceId), 'terminate');
  expect(terminate.arg).toMatchObject({ reason: 'termination-notice', drain: true });
  expect(terminate.at).toBeLessThan(await startedAt(fx.client, instanceWorkflowId(shard, replacement.instanceId)));
  // The drain waited for the target until the host's deadline, not for the 60 s drain timeout.
  const deregisteredAt = fx.faults.calls[callIndex('DeregisterTargets', victim.ec2InstanceId as string)].at;
  const terminatedAt = fx.faults.calls[callIndex('TerminateInstances', victim.ec2InstanceId as string)].at;
  expect(terminatedAt).toBeGreaterThanOrEqual(deadlineMs - 3_000);
  expect(terminatedAt).toBeLessThan(Math.max(deregisteredAt, deadlineMs) + 15_000);
  fx.faults.stopDraining(victim.ec2InstanceId as string);
});

test('`nstance agent --once --imds-url` reads the notice from that IMDS and reports it: the instance is replaced', async () => {
  const before = await settled(2);
  const victim = before.members[1];
  // The real command, as on the instance, registering anew for it (a second agent: the fleet's keeps reporting without a notice).
  const dir = mkdtempSync(join(tmpdir(), 'nstance-spot-cli-'));
  await writeFile(join(dir, 'ca.crt'), (await readClusterCa(fx.aws.s3, fx.bucket)) ?? '');
  const secret = await fx.aws.secrets.send(new GetSecretValueCommand({ SecretId: `nstance/${shard}/registration-key` }));
  const nonce = mintNonce(createPrivateKey(secret.SecretString ?? ''), { cluster: 'test', shard, tenant: 'default', group: 'web', instanceId: victim.instanceId }, 60_000).token;
  const deadlineMs = deadlineIn(10 * 60_000);
  const prefix = `cli-${victim.ec2InstanceId}`;
  let run: CliResult | undefined;
  await interrupt(before, victim, deadlineMs, prefix, async () => {
    const args = ['--register', `${fx.seed.leaderIp}:8443`, '--connect', address, '--nonce', nonce, '--ca-file', join(dir, 'ca.crt'), '--state-dir', join(dir, 'state')];
    run = await runCli('agent', ...args, '--imds-url', imds.url(prefix), '--once');
  });
  expect(run).toMatchObject({ code: 0, stdout: expect.stringContaining(`${victim.instanceId}: registered`) });
  expect(run?.stdout).toContain(`health reported, termination notice (reclaimed at ${new Date(deadlineMs).toISOString()})`);
});
