import { DescribeInstanceAttributeCommand } from '@aws-sdk/client-ec2';
import { instanceWorkflowId, TAG } from '../../common/names';
import { waitForConvergence } from '../../client/ops/status';
import { parseAgentArgs } from '../../client/agent/userdata';
import { createNonceIssuer } from '../../adapters/pki/issuer';
import { launchNonceId, peekClaims } from '../../adapters/pki/nonce';
import { awsError } from '../support/faults';
import { eventually, shardInstances, tagOf } from '../support/emulator';
import { useShard } from '../support/shard-fixture';
import { auditedCreations, readAuditLog } from '../support/audit-log';

const fx = useShard('crash');
const { shard, ref } = fx;

/** As a real fleet's userdata: the agent is handed a registration nonce, so every launch renders one. */
const USERDATA = '#!/bin/bash\n/opt/nstance/agent --register {{ .Server.RegistrationAddr }} --nonce {{ .Nonce }}\n';

beforeAll(async () => {
  // Registration nonces on, as a worker serving the agent API has them (workers/agent-api/wiring.ts).
  await fx.h.startWorker({ issueRegistrationNonce: createNonceIssuer({ aws: fx.aws, bucket: fx.bucket }) });
});

const isAudit = (command: string, input: Record<string, unknown>) =>
  command === 'PutObject' && String(input.Key).includes('/audit/') && String(input.Key).includes('.instance.create.');

test('a launch that crashes right after RunInstances succeeded is retried without a second instance, and audit retries do not duplicate', async () => {
  // Attempt 1 of every launch "crashes" after AWS accepted it; EC2 then hides the new
  // instance from Describe for a while, so the retry's tag look-up misses it and only
  // the ClientToken (AWS's idempotency, emulated by the fault layer, parameters compared)
  // prevents a duplicate. The hiding outlasts the activity's first retry (1 s) by far, even on a loaded machine.
  fx.faults
    .emulateClientTokens()
    .hideNewInstances(15_000)
    .failAfter('RunInstances', () => awsError('InternalError', 'injected: worker crashed after RunInstances', 'server'), 2)
    .failAfter(isAudit, () => awsError('InternalError', 'injected: crash after the audit write', 'server'), 2);

  const config = fx.config({ size: 3 }) as { templates: { web: { userdata: { content: string } } } };
  config.templates.web.userdata.content = USERDATA;
  await fx.apply(config);
  const status = await waitForConvergence(fx.client, ref, { timeoutMs: 90_000, size: 3, pollMs: 300 });

  const running = await eventually('3 instances', async () => {
    const found = await shardInstances(fx.aws.ec2, shard, ['pending', 'running', 'stopped', 'stopping']);
    return found.length === 3 ? found : undefined;
  });
  // Exactly three launched in the emulator, ever: no terminated duplicate either.
  expect(await shardInstances(fx.aws.ec2, shard, ['pending', 'running', 'stopped', 'stopping', 'shutting-down', 'terminated'])).toHaveLength(3);
  expect(running.map((i) => tagOf(i, TAG.instanceId)).sort()).toEqual(status.members.map((m) => m.instanceId).sort());
  // The injected failures really happened, and the retries reached RunInstances with the first attempt's token.
  const runs = fx.faults.callsOf('RunInstances');
  expect(runs.filter((c) => c.outcome === 'injected')).toHaveLength(2);
  expect(runs.length).toBeGreaterThan(3);

  // What real EC2 requires of a retried token: the very same request. A nonce minted afresh per
  // attempt (new jti, new iat) would differ here, and EC2 would answer IdempotentParameterMismatch.
  expect(runs.filter((c) => c.error === 'IdempotentParameterMismatch')).toEqual([]);
  const byToken = new Map<string, Record<string, unknown>[]>();
  for (const c of runs) byToken.set(String(c.input.ClientToken), [...(byToken.get(String(c.input.ClientToken)) ?? []), c.input]);
  expect([...byToken.values()].filter((inputs) => inputs.length > 1).length).toBeGreaterThanOrEqual(1);
  for (const inputs of byToken.values()) for (const input of inputs) expect(input).toEqual(inputs[0]);

  // Each instance boots with its own nonce: jti derived from its workflow, exp = iat + registration_timeout (5m).
  for (const instance of running) {
    const { UserData } = await fx.aws.ec2.send(new DescribeInstanceAttributeCommand({ InstanceId: instance.InstanceId, Attribute: 'userData' }));
    const nonce = parseAgentArgs(Buffer.from(UserData?.Value ?? '', 'base64').toString('utf8'))?.nonce ?? '';
    const id = tagOf(instance, TAG.instanceId) as string;
    const claims = peekClaims(nonce);
    expect(claims).toMatchObject({ sub: id, shard, jti: launchNonceId(instanceWorkflowId(shard, id)) });
    expect((claims?.exp ?? 0) - (claims?.iat ?? 0)).toBe(300);
  }

  // Each instance's creation audited once, though the audit write "crashed" twice after writing.
  const creates = auditedCreations(await readAuditLog(fx.aws.s3, fx.bucket, shard));
  expect(creates).toHaveLength(3);
  expect(new Set(creates.map((c) => c.instanceId)).size).toBe(3);
  // The batch's one entry "crashed" after its write; the retry's create-only write found it there (nothing
  // after it to crash), so one of the two armed crashes happened.
  expect(fx.faults.calls.filter((c) => isAudit(c.command, c.input) && c.outcome === 'injected')).toHaveLength(1);
});

test('with Describe consistent, the retried launch finds its instance by tag and adopts it: RunInstances is not called again', async () => {
  fx.faults.clear();
  fx.faults.hideNewInstances(0).failAfter('RunInstances', () => awsError('InternalError', 'injected: worker crashed after RunInstances', 'server'), 1);
  const before = fx.faults.callsOf('RunInstances').length;
  await fx.scale(4);
  const status = await waitForConvergence(fx.client, ref, { timeoutMs: 90_000, size: 4, pollMs: 300 });
  // One RunInstances for the fourth instance, the injected crash; its retry adopted instead of launching.
  const runs = fx.faults.callsOf('RunInstances').slice(before);
  expect(runs.map((c) => c.outcome)).toEqual(['injected']);
  const fourth = status.members.find((m) => JSON.stringify(runs[0].input).includes(m.instanceId));
  expect(fourth).toBeDefined();
  const creation = await eventually('its creation audited', async () => auditedCreations(await readAuditLog(fx.aws.s3, fx.bucket, shard)).find((c) => c.instanceId === fourth!.instanceId));
  expect(creation.adopted).toBe(true);
  expect(await shardInstances(fx.aws.ec2, shard, ['pending', 'running', 'stopped', 'stopping', 'shutting-down', 'terminated'])).toHaveLength(4);
  await fx.expectEmulatorMatchesGroups();
});
