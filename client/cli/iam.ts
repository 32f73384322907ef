/** `nstance iam policy`: the least-privilege IAM documents a config needs (registered by client/cli/main.ts). */
import { readFileSync } from 'node:fs';
import { GetInstanceProfileCommand, IAMClient } from '@aws-sdk/client-iam';
import { Command } from 'commander';
import { parseConfigText, type NstanceConfig } from '../../common/config';
import { iamReport, type IamReport } from '../../common/iam/documents';
import { checkLaunchArgsGrantable } from '../../common/iam/launch-args';
import { instanceProfiles, profileName } from '../../common/iam/policy';
import { json } from './output';

interface IamPolicyOptions {
  file: string;
  json?: boolean;
  agent?: boolean;
  crossAccount?: boolean;
  account?: string;
  operator?: string;
  resolveRoles?: boolean;
  bucketAccount?: string;
}

const ACCOUNT_ID = /^\d{12}$/;
// What a role's trust policy may name as its Principal AWS: an account (id or root), a user or a role (with a path).
const PRINCIPAL_ARN = /^arn:aws[a-z-]*:iam::\d{12}:(root|(user|role)\/[\w+=,.@/-]{1,512})$/;

/** The flags' values checked before anything is generated; the error names the flag and what it expects. */
export function checkIamPolicyFlags(options: Pick<IamPolicyOptions, 'account' | 'operator' | 'crossAccount' | 'bucketAccount'>): void {
  for (const [flag, value] of [['--account', options.account], ['--bucket-account', options.bucketAccount]] as const) {
    if (value !== undefined && !ACCOUNT_ID.test(value)) throw new Error(`${flag} ${JSON.stringify(value)}: expected a 12-digit AWS account id (e.g. 123456789012)`);
  }
  if (options.bucketAccount !== undefined && !options.crossAccount) throw new Error('--bucket-account says which account owns the bucket across shard.infra.assume_role: it needs --cross-account');
  if (options.operator === undefined) return;
  if (!options.crossAccount) throw new Error('--operator names who assumes shard.infra.assume_role: it needs --cross-account');
  if (!ACCOUNT_ID.test(options.operator) && !PRINCIPAL_ARN.test(options.operator)) {
    throw new Error(
      `--operator ${JSON.stringify(options.operator)}: expected the identity that assumes the role, an IAM role, user or account ARN (e.g. arn:aws:iam::111111111111:role/nstance-worker) or a 12-digit account id`,
    );
  }
}

/**
 * The roles behind each instance profile, asked of IAM (iam:GetInstanceProfile), for a PassRole scoped to
 * them. A profile IAM does not know, or one without a role, is an error naming it: the policy would
 * otherwise pass a role that is not there, or none.
 */
export async function resolveProfileRoles(config: NstanceConfig, iam: Pick<IAMClient, 'send'>): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const ref of instanceProfiles(config)) {
    const name = profileName(ref);
    let roles: string[];
    try {
      const found = await iam.send(new GetInstanceProfileCommand({ InstanceProfileName: name }));
      roles = (found.InstanceProfile?.Roles ?? []).map((r) => r.Arn ?? '').filter((arn) => arn !== '');
    } catch (err) {
      const missing = (err as Error).name === 'NoSuchEntity' || (err as Error).name === 'NoSuchEntityException';
      throw new Error(`--resolve-roles: ${missing ? `no instance profile "${name}" in the account (IamInstanceProfile ${ref} in args)` : `instance profile "${name}": ${(err as Error).message}`}`, { cause: err });
    }
    if (roles.length === 0) throw new Error(`--resolve-roles: instance profile "${name}" has no role, so a launch with it passes none; add its role (iam add-role-to-instance-profile)`);
    out[ref] = roles;
  }
  return out;
}

async function resolveProfileRolesFromEnv(config: NstanceConfig): Promise<Record<string, string[]>> {
  const iam = new IAMClient({ region: config.shard.infra.region, endpoint: process.env.AWS_ENDPOINT_URL || undefined });
  try {
    return await resolveProfileRoles(config, iam);
  } finally {
    iam.destroy();
  }
}

function section(title: string, body: unknown): string {
  return `# ${title}\n${typeof body === 'string' ? body : json(body)}\n`;
}

export function renderIamReport(report: IamReport): string {
  const parts = [
    section(`worker role policy (account ${report.account}, region ${report.region})`, report.workerPolicy),
    section('worker role trust policy', report.workerTrustPolicy),
    section('operator policy: what `nstance config apply` calls (never the worker)', report.cliPolicy),
    section(
      'actions that accept no resource ARN (bounded to the region above)',
      report.unscoped.map((u) => `- ${u.actions.join(', ')}: ${u.why}`).join('\n'),
    ),
  ];
  if (report.agentPolicy) {
    parts.push(section('agent (instance profile) policy: the agent calls no AWS API, so none is needed', report.agentPolicy));
    parts.push(section('agent role trust policy', report.agentTrustPolicy));
  }
  if (report.crossAccount) {
    parts.push(section("shard account: the assumed role's trust policy (ExternalId required)", report.crossAccount.roleTrustPolicy));
    parts.push(section("shard account: the assumed role's permissions", report.crossAccount.rolePolicy));
    parts.push(section("operator account: the worker's own permissions", report.crossAccount.operatorPolicy));
    const bucket = report.crossAccount.bucket;
    parts.push(
      section(
        bucket.policy ? `bucket ${bucket.bucket} (account ${bucket.account}): its bucket policy` : `bucket ${bucket.bucket}: no bucket policy needed`,
        bucket.policy ? `# ${bucket.why}\n${json(bucket.policy)}` : bucket.why,
      ),
    );
  }
  if (report.notes.length > 0) parts.push(section('notes', report.notes.map((n) => `- ${n}`).join('\n')));
  return parts.join('\n');
}

export function iamCommand(): Command {
  const iam = new Command('iam').description('IAM documents for a config');
  iam
    .command('policy')
    .description('print the least-privilege IAM policy (and trust policy) this config needs')
    .requiredOption('-f, --file <file>', 'config file (.jsonc, .json, .yaml, .yml)')
    .option('--json', 'machine-readable output')
    .option('--agent', "also print the instance profile's (empty) policy and trust")
    .option('--cross-account', "also print both sides of shard.infra.assume_role: the role's trust (with sts:ExternalId) and the operator's sts:AssumeRole")
    .option('--account <id>', 'the account of the shard resources (default: from the target group ARNs)')
    .option('--operator <arn>', 'with --cross-account: the identity that assumes the role (default: the operator account root, to narrow)')
    .option('--bucket-account <id>', "with --cross-account: the account that owns the bucket (default: the operator's; the shard role's account gives the bucket policy for the operator instead)")
    .option('--resolve-roles', "ask IAM for the instance profiles' roles (iam:GetInstanceProfile) instead of assuming they share the profile's name")
    .action(async (options: IamPolicyOptions) => {
      checkIamPolicyFlags(options);
      let text: string;
      try {
        text = readFileSync(options.file, 'utf8');
      } catch (err) {
        throw new Error(`cannot read ${options.file}: ${(err as Error).message}`, { cause: err });
      }
      const config = parseConfigText(text, options.file);
      checkLaunchArgsGrantable(config, options.file);
      const report = iamReport(config, {
        account: options.account,
        agent: options.agent,
        crossAccount: options.crossAccount,
        operatorPrincipal: options.operator,
        bucketAccount: options.bucketAccount,
        instanceProfileRoles: options.resolveRoles ? await resolveProfileRolesFromEnv(config) : undefined,
      });
      process.stdout.write(options.json ? `${json(report)}\n` : renderIamReport(report));
    });
  return iam;
}
