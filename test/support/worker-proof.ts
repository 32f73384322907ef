/**
 * The IAM proof for worker OS processes (the leader stacks), which run outside the in-process fault layer:
 * every AWS call they sent through the fault proxy, of every service (S3, EC2, ELBv2, Secrets Manager,
 * SSM), rebuilt from the wire (wire-calls.ts), with the resource tags EC2 holds for the instances and ENIs
 * they name (DescribeTags, read at the end as IAM reads them at the call), evaluated against the generated
 * policy exactly as the shard fixture's proof evaluates the in-process calls.
 */
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { NstanceConfig } from '../../common/config';
import { workerPolicy, type PolicyDocument } from '../../common/iam/policy';
import { tagsFromEc2 } from './eni-proof';
import type { ProxyCall } from './fault-proxy';
import { MOTO_ACCOUNT } from './faults';
import { authRequestsOf, type AuthRequest } from './iam-calls';
import { describeVerdict, evaluate, usedBy } from './iam-proof';
import { resourceUsage } from './iam-resource-usage';
import { offeredBy, recordUsage, usageDir } from './iam-usage';
import type { WireCall } from './wire-calls';

export interface WorkerProofOptions {
  /** Calls signed with these access keys are the test's own reads through the proxy, not the workers'. */
  ignoreKeys?: readonly string[];
  /** The policies to prove against, a call allowed by any (default: the one `nstance iam policy` generates for the config). */
  policies?: PolicyDocument[];
}

export interface WorkerProofResult {
  /** Calls proven, by `service:command`. */
  calls: Record<string, number>;
  /** Distinct IAM requests evaluated. */
  distinct: number;
}

/** The workers' calls among `wire`: not the emulator's own API, not the test's reads. */
export function workerCalls(wire: readonly WireCall[], ignoreKeys: readonly string[] = []): WireCall[] {
  return wire.filter(
    (c) =>
      c.service !== 'moto' &&
      !(c.accessKeyId !== undefined && ignoreKeys.includes(c.accessKeyId)) &&
      // A detach of an attachment that is gone names no ENI or instance for IAM to check: EC2 answers NotFound.
      c.outcome !== 'InvalidAttachmentID.NotFound',
  );
}

const ID_FIELDS = ['InstanceIds', 'InstanceId', 'NetworkInterfaceId', 'Resources'];

/** What IAM authorises for each of `calls`, with EC2's tags of the resources they name. */
export async function workerAuthRequests(ec2: EC2Client, calls: readonly WireCall[], moves: readonly ProxyCall[], region: string): Promise<{ call: WireCall; requests: AuthRequest[] }[]> {
  const joins = new Map<string, { interfaceId?: string; instanceId?: string }>();
  for (const m of moves) if (m.attachmentId) joins.set(m.attachmentId, { interfaceId: m.interfaceId, instanceId: m.instanceId });
  const named = calls.flatMap((c) => ID_FIELDS.flatMap((f) => [c.input[f]].flat())).filter((v): v is string => typeof v === 'string' && /^(i|eni)-/.test(v));
  const joined = [...joins.values()].flatMap((j) => [j.interfaceId, j.instanceId]).filter((id): id is string => Boolean(id));
  const tags = await tagsFromEc2(ec2, [...new Set([...named, ...joined])]);
  const facts = { tagsOf: (id: string) => tags.get(id), attachment: (id: string) => joins.get(id) };
  const scope = { region, account: MOTO_ACCOUNT };
  return calls.map((call) => ({ call, requests: authRequestsOf(call.command, call.input, scope, facts) ?? [] }));
}

/** Every call of the workers in `wire` must be allowed by `config`'s policy; throws naming each refused request. */
export async function proveWorkerCalls(
  ec2: EC2Client,
  wire: readonly WireCall[],
  moves: readonly ProxyCall[],
  config: NstanceConfig,
  region: string,
  options: WorkerProofOptions = {},
): Promise<WorkerProofResult> {
  const authorised = await workerAuthRequests(ec2, workerCalls(wire, options.ignoreKeys), moves, region);
  const calls: Record<string, number> = {};
  for (const { call, requests } of authorised) if (requests.length > 0) calls[`${call.service}:${call.command}`] = (calls[`${call.service}:${call.command}`] ?? 0) + 1;
  const policies = options.policies ?? [workerPolicy(config, { account: MOTO_ACCOUNT })];
  const verdicts = await evaluate(authorised.flatMap((a) => a.requests), policies);
  const refused = verdicts.filter((v) => v.result !== 'Allowed');
  if (refused.length > 0) {
    throw new Error(`IAM proof: ${refused.length} of ${verdicts.length} distinct AWS requests of the worker processes are not allowed by the generated policy:\n${refused.map(describeVerdict).join('\n')}`);
  }
  recordUsage(offeredBy(policies), usedBy(verdicts), usageDir(), resourceUsage(policies.map((policy) => ({ config, policy })), verdicts));
  return { calls, distinct: verdicts.length };
}

/** `policy` without the statement `sid` (a proof that still passed without it would prove nothing about it). */
export function withoutStatement(policy: PolicyDocument, sid: string): PolicyDocument {
  const kept = policy.Statement.filter((s) => s.Sid !== sid);
  if (kept.length === policy.Statement.length) throw new Error(`the generated policy has no statement ${sid}`);
  return { ...policy, Statement: kept };
}
