/**
 * The IAM proof: every AWS call the project made in a test file, as the fault layer recorded it (action,
 * resource ARNs, request and resource tags), evaluated by a policy simulator (@cloud-copilot/iam-simulate)
 * against the policy `nstance iam policy` generates for the configs that file applied. Run once per file
 * from the shard fixture's afterAll, so it costs the scenarios nothing but the evaluation (distinct
 * requests only: a few dozen per file).
 */
import { getGrantReasons, runSimulation, type RunSimulationResults } from '@cloud-copilot/iam-simulate';
import type { NstanceConfig } from '../../common/config';
import { cliPolicy } from '../../common/iam/documents';
import { profileName, workerPolicy, type IamOptions, type PolicyDocument } from '../../common/iam/policy';
import type { CallRecord } from './faults';
import { MOTO_ACCOUNT } from './faults';
import type { AuthRequest } from './iam-calls';
import { resourceUsage } from './iam-resource-usage';
import { byStatement, offeredBy, recordUsage, usageDir, type StatementActions } from './iam-usage';

export const PROOF_PRINCIPAL = `arn:aws:iam::${MOTO_ACCOUNT}:role/nstance-worker`;

export interface Verdict {
  request: AuthRequest;
  /** Allowed, ImplicitlyDenied, ExplicitlyDenied, or the simulator's validation error. */
  result: string;
  /** The Sids of the identity-policy statements that allowed it (none when it was not allowed). */
  grants: string[];
}

/** The statements that allowed a request, as the simulator reports them (a wildcard resource has one result per pattern). */
function grantsOf(response: RunSimulationResults): string[] {
  if (response.resultType === 'error') return [];
  const analyses = response.resultType === 'single' ? [response.result.analysis] : response.results.map((r) => r.analysis);
  const sids = analyses.flatMap((a) => getGrantReasons(a)).filter((g) => g.policyType === 'identity').map((g) => g.statementId ?? `#${g.statementIndex}`);
  return [...new Set(sids)].sort();
}

/** PassRole is recorded with the profile the launch named; the seed gives each profile a role of its own name. */
function resolvePassRole(request: AuthRequest, account: string): AuthRequest {
  if (!request.resource.startsWith('passrole:')) return request;
  const profile = JSON.parse(request.resource.slice('passrole:'.length)) as { Arn?: string; Name?: string };
  const name = profileName(profile.Arn ?? profile.Name ?? '');
  return { action: request.action, resource: `arn:aws:iam::${account}:role/${name}`, context: { 'iam:PassedToService': 'ec2.amazonaws.com' } };
}

const keyOf = (r: AuthRequest) => JSON.stringify([r.action, r.resource, Object.entries(r.context).sort(([a], [b]) => a.localeCompare(b))]);

export interface EvaluateOptions {
  /** The caller (default PROOF_PRINCIPAL, in moto's account). */
  principal?: string;
  /** A resource policy, e.g. a role's trust policy for sts:AssumeRole across accounts. */
  resourcePolicy?: unknown;
}

/** Evaluates distinct requests against the policies (allowed when any of them allows). */
export async function evaluate(requests: AuthRequest[], policies: PolicyDocument[], account = MOTO_ACCOUNT, options: EvaluateOptions = {}): Promise<Verdict[]> {
  const distinct = new Map<string, AuthRequest>();
  for (const r of requests.map((x) => resolvePassRole(x, account))) distinct.set(keyOf(r), r);
  const verdicts: Verdict[] = [];
  for (const request of distinct.values()) {
    const response = await runSimulation(
      {
        identityPolicies: policies.map((policy, i) => ({ name: `nstance-${i}`, policy: policy as unknown as Record<string, unknown> })),
        serviceControlPolicies: [],
        resourceControlPolicies: [],
        ...(options.resourcePolicy ? { resourcePolicy: options.resourcePolicy } : {}),
        request: { action: request.action, principal: options.principal ?? PROOF_PRINCIPAL, resource: { accountId: account, resource: request.resource }, contextVariables: request.context },
      },
      {},
    );
    const result = response.resultType === 'error' ? `simulator error: ${JSON.stringify(response.errors)}` : response.overallResult;
    verdicts.push({ request, result, grants: grantsOf(response) });
  }
  return verdicts;
}

export function describeVerdict(v: Verdict): string {
  const context = Object.entries(v.request.context)
    .filter(([k]) => k !== 'aws:RequestedRegion')
    .map(([k, x]) => `${k}=${Array.isArray(x) ? `[${x.join(',')}]` : x}`)
    .join(' ');
  return `${v.request.action} on ${v.request.resource}${context ? ` (${context})` : ''}: ${v.result}`;
}

/** Which statement allowed which action, over `verdicts` (for the "nothing more" check, iam-usage.ts). */
export function usedBy(verdicts: readonly Verdict[]): StatementActions {
  return byStatement(verdicts.flatMap((v) => v.grants.map((sid) => ({ sid, action: v.request.action }))));
}

export interface ProofResult {
  requests: number;
  distinct: number;
  /** What the proof's policies offered, and which statement allowed which action. */
  offered: StatementActions;
  used: StatementActions;
}

/**
 * Every project call of `calls` must be allowed by the policy of one of `configs`: the worker's calls by
 * the worker's policy, those a test made as the operator (operator-calls.ts) by the operator's policy
 * (`config apply`'s), and the test's own through shared clients by the worker's (as strict as the worker's,
 * though they are not its). Throws naming each call that is not; when all are, records which statements,
 * and which resources of each, the worker's and the operator's calls used (never the test's own).
 */
export async function proveCallsAllowed(calls: CallRecord[], configs: NstanceConfig[], options: IamOptions = {}): Promise<ProofResult> {
  const iamOptions = { account: MOTO_ACCOUNT, ...options };
  const worker = configs.map((c) => workerPolicy(c, iamOptions));
  const operator = configs.map((c) => cliPolicy(c, iamOptions));
  const judged = [
    { caller: 'worker', policies: worker, credited: true },
    { caller: 'operator', policies: operator, credited: true },
    { caller: 'test', policies: worker, credited: false },
  ];
  let requests = 0;
  const verdicts: Verdict[] = [];
  const credited: Verdict[] = [];
  for (const { caller, policies, credited: counts } of judged) {
    const theirs = calls.filter((c) => c.caller === caller).flatMap((c) => c.auth ?? []);
    requests += theirs.length;
    const judgedNow = await evaluate(theirs, policies);
    verdicts.push(...judgedNow);
    if (counts) credited.push(...judgedNow);
  }
  const refused = verdicts.filter((v) => v.result !== 'Allowed');
  if (refused.length > 0) {
    throw new Error(`IAM proof: ${refused.length} of ${verdicts.length} distinct AWS requests the project made are not allowed by the generated policy:\n${refused.map(describeVerdict).join('\n')}`);
  }
  const proven = configs.flatMap((config, i) => [
    { config, policy: worker[i] as PolicyDocument },
    { config, policy: operator[i] as PolicyDocument },
  ]);
  const offered = offeredBy(proven.map((p) => p.policy));
  const used = usedBy(credited);
  recordUsage(offered, used, usageDir(), resourceUsage(proven, credited));
  return { requests, distinct: verdicts.length, offered, used };
}
