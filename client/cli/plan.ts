/** `nstance plan -f FILE`: what `config apply` would do, as a readable diff or JSON; exit 0 no change, 2 changes. */
import { Command } from 'commander';
import type { PlanResult } from '../ops/plan';
import { CommandExit } from './exit';

/** Like `terraform plan -detailed-exitcode`. */
export const PLAN_EXIT = { unchanged: 0, changed: 2 } as const;

export function renderPlan(plan: PlanResult): string {
  const lines: string[] = [];
  const g = plan.groups;
  for (const a of g.added) lines.push(`+ group ${a.group} (size ${a.size})`);
  for (const r of g.removed) lines.push(`- group ${r.group} (its ${r.size} instances drain, then the group ends)`);
  for (const r of g.resized) lines.push(`~ group ${r.group}: size ${r.from} -> ${r.to}`);
  for (const r of g.rotating) {
    const who = r.counted ? `${r.members} member${r.members === 1 ? '' : 's'}` : `all its members (${r.members} by config; the group is not running)`;
    lines.push(`~ group ${r.group}: ${who} rotate (${r.fields.join(', ')} changed), create-before-destroy within max_surge`);
  }
  for (const p of g.pushed) lines.push(`~ group ${p.group}: ${p.fields.join(', ')} pushed to running instances (nothing rotates)`);
  for (const s of g.settings) lines.push(`~ group ${s.group}: ${s.fields.join(', ')} (applies to what the group does next; nothing rotates)`);
  const lb = plan.loadBalancers;
  for (const n of lb.added) lines.push(`+ load balancer ${n}`);
  for (const n of lb.removed) lines.push(`- load balancer ${n}`);
  for (const n of lb.changed) lines.push(`~ load balancer ${n}: target groups changed`);
  for (const t of lb.groups) {
    for (const arn of t.added) lines.push(`+ group ${t.group}: joins target group ${arn}`);
    for (const arn of t.removed) lines.push(`- group ${t.group}: leaves target group ${arn}`);
  }
  if (plan.iam.added.length > 0) lines.push(`+ IAM actions newly needed: ${plan.iam.added.join(', ')}`);
  if (plan.droppedOverrides.length > 0) lines.push(`~ size overrides (group scale) replaced by the config: ${plan.droppedOverrides.join(', ')}`);
  if (plan.sections.length > 0) lines.push(`~ config sections changed: ${plan.sections.join(', ')}`);
  const against = plan.baseEtag ? `the applied config (ETag ${plan.baseEtag})` : 'no applied config';
  const head = `plan for shard ${plan.shard} (s3://${plan.bucket}), against ${against}:`;
  return plan.changed ? `${head}\n${lines.map((l) => `  ${l}`).join('\n')}\n` : `${head}\n  no changes\n`;
}

export interface PlanCommandDeps {
  plan: (file: string, bucket: string | undefined) => Promise<PlanResult>;
  json: (value: unknown) => string;
}

export function planCommand(deps: PlanCommandDeps): Command {
  return new Command('plan')
    .description('what `config apply -f FILE` would do: groups added, removed, resized, members that would rotate and why, load balancer and IAM changes; exit 0 when nothing changes, 2 when something does')
    .requiredOption('-f, --file <file>', 'config file (.jsonc, .json, .yaml, .yml)')
    .option('--bucket <bucket>', 'S3 bucket (default: cluster.storage.bucket, or NSTANCE_BUCKET)')
    .option('--json', 'machine-readable output')
    .action(async (options: { file: string; bucket?: string; json?: boolean }) => {
      const plan = await deps.plan(options.file, options.bucket ?? process.env.NSTANCE_BUCKET);
      process.stdout.write(options.json ? `${deps.json(plan)}\n` : renderPlan(plan));
      if (plan.changed) throw new CommandExit(PLAN_EXIT.changed);
    });
}

/**
 * `config apply`'s confirmation: shows the plan (unless --json) and, on a terminal, asks before applying
 * unless --yes. Declining ends the command with exit 1 and nothing written.
 */
export async function confirmPlan(
  plan: PlanResult,
  options: { yes?: boolean; json?: boolean },
  io: { stdin: NodeJS.ReadStream; stdout: NodeJS.WriteStream } = { stdin: process.stdin, stdout: process.stdout },
): Promise<void> {
  if (!options.json) io.stdout.write(renderPlan(plan));
  if (options.yes || !io.stdin.isTTY || !plan.changed) return;
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: io.stdin, output: io.stdout });
  try {
    const answer = (await rl.question('apply these changes? [y/N] ')).trim().toLowerCase();
    if (answer !== 'y' && answer !== 'yes') throw new Error('apply cancelled: nothing was written');
  } finally {
    rl.close();
  }
}
