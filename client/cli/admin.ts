/** Nstance's admin commands: `group create|delete|list|status` and `config status|refresh`, each with --json. */
import { InvalidArgumentError, type Command } from 'commander';
import { errorMessage } from '../../common/failures';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { AwsClients } from '../../adapters/aws/clients';
import { parseDuration } from '../../common/duration';
import { groupWorkflowId } from '../../common/names';
import type { GroupRef } from '../../common/types';
import { configRefresh, configStatus } from '../ops/config-admin';
import { createGroup, deleteGroup, groupStatusReport, listGroups, liveCounts, type GroupStatusReport } from '../ops/groups-admin';
import { parseGroupRef } from '../ops/groups-signal';
import { groupStatus, waitForConvergence } from '../ops/status';
import { rotationDone, rotationLeft } from '../../workflows/group-status';
import { json, table } from './output';
import { groupProgress } from './progress';
import { withRunIds, type RunRef } from './ui-links';

export interface AdminDeps {
  withClients: <T>(body: (client: Client, aws: AwsClients) => Promise<T>) => Promise<T>;
  shardFrom: (options: { shard?: string }) => string;
  bucketFrom: (options: { bucket?: string }) => string;
  actor: () => string;
  /** "Web UI: <link>" lines for runs (the program's --ui-url, else from the Temporal address). */
  links: (runs: RunRef[]) => string;
}

type Common = { shard?: string; bucket?: string; json?: boolean };
const print = (text: string) => void process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);

function parseVar(text: string, previous: Record<string, string> = {}): Record<string, string> {
  const at = text.indexOf('=');
  if (at <= 0) throw new InvalidArgumentError(`"${text}" is not a var: write it as NAME=VALUE`);
  return { ...previous, [text.slice(0, at)]: text.slice(at + 1) };
}

/** Checked as the flags are read: a bad --timeout must not surface only after the group was created or deleted. */
function parseTimeout(text: string): string {
  try {
    parseDuration(text);
  } catch (err) {
    throw new InvalidArgumentError(errorMessage(err));
  }
  return text;
}

function parseCount(text: string): number {
  if (!/^\d+$/.test(text)) throw new InvalidArgumentError('size must be a whole number, for example 3');
  return Number(text);
}

/** Waits until the group serves its size, showing progress. */
async function waitConverged(client: Client, ref: GroupRef, size: number, timeout: string): Promise<void> {
  const progress = groupProgress(`${ref.tenant}/${ref.group}`, size, (s) => s.inService);
  try {
    await waitForConvergence(client, ref, { timeoutMs: parseDuration(timeout), size, onProgress: (s) => progress.update(s) });
  } finally {
    progress.stop();
  }
}

/** Waits until a deleted dynamic group's workflow has drained its members and ended. */
async function waitEnded(client: Client, ref: GroupRef, timeout: string): Promise<void> {
  const deadline = Date.now() + parseDuration(timeout);
  const first = await groupStatus(client, ref, { limit: 0 }).catch(() => undefined);
  const progress = groupProgress(`${ref.tenant}/${ref.group} deleting`, first?.total ?? 0, (s) => (first?.total ?? 0) - s.total);
  try {
    const handle = client.workflow.getHandle(groupWorkflowId(ref.shard, ref.tenant, ref.group));
    for (;;) {
      const described = await handle.describe();
      if (described.status.name !== 'RUNNING') return;
      const s = await groupStatus(client, ref, { limit: 0 }).catch(() => undefined);
      if (s) progress.update(s);
      if (Date.now() >= deadline) throw new Error(`group ${ref.tenant}/${ref.group} still has members after ${timeout}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  } finally {
    progress.stop();
  }
}

/**
 * Polls the group's counts (a counts-only status query: a few hundred bytes whatever the size) until its
 * rotation is done (rotationDone). The full report, config included, is read once at the start (it names a
 * group that does not exist) and once at the end, to print.
 */
async function waitRotated(client: Client, ref: GroupRef, read: () => Promise<GroupStatusReport>, timeout: string, show: boolean): Promise<GroupStatusReport> {
  const deadline = Date.now() + parseDuration(timeout);
  const live = async (): Promise<GroupStatusReport['live']> => {
    const s = await groupStatus(client, ref, { limit: 0 }).catch((err: unknown) => {
      if (err instanceof WorkflowNotFoundError) return undefined;
      throw err;
    });
    if (!s) return undefined;
    // A worker too old to count the rotation: its members are the only way to know.
    return s.rotation ? liveCounts(s, s.rotation) : (await read()).live;
  };
  const left = (l: GroupStatusReport['live']) => (l ? rotationLeft(l) : 0);
  let counts = (await read()).live;
  const total = left(counts);
  // Never below 0: a config changed again mid-rotation adds drifted members after the total was taken.
  const progress = show ? groupProgress(`${ref.tenant}/${ref.group} rotating`, total, () => Math.max(0, total - left(counts))) : undefined;
  try {
    for (;;) {
      if (counts && rotationDone(counts)) return await read();
      if (Date.now() >= deadline) throw new Error(`group ${ref.tenant}/${ref.group}: rotation not done after ${timeout} (${left(counts)} member(s) left)`);
      await new Promise((r) => setTimeout(r, 1000));
      counts = await live();
      if (progress && counts) progress.update({ ...ref, ...counts, members: [], configured: true });
    }
  } finally {
    progress?.stop();
  }
}

export function addGroupAdminCommands(group: Command, deps: AdminDeps): void {
  group
    .command('create')
    .description('create a dynamic group in groups.jsonc, or override a config.jsonc group (only --size, --instance-type and --var, as in Nstance)')
    .argument('<tenant/group>', 'the group, for example default/batch')
    .option('--template <template>', 'template (new groups only)')
    .option('--size <n>', 'size', parseCount)
    .option('--instance-type <type>', 'instance type')
    .option('--subnet-pool <pool>', 'subnet pool (new groups only)')
    .option('--var <NAME=VALUE>', 'a var (repeatable)', parseVar)
    .option('--shard <shard>', 'shard (default NSTANCE_SHARD)')
    .option('--bucket <bucket>', 'S3 bucket (default NSTANCE_BUCKET)')
    .option('--wait', 'show progress until the group serves its size')
    .option('--timeout <duration>', 'with --wait: give up after this long (exit 1)', parseTimeout, '10m')
    .option('--json', 'machine-readable output')
    .action(async (target: string, o: Common & { template?: string; size?: number; instanceType?: string; subnetPool?: string; var?: Record<string, string>; wait?: boolean; timeout: string }) => {
      const ref = parseGroupRef(target, deps.shardFrom(o));
      await deps.withClients(async (client, aws) => {
        const result = await createGroup(
          { client, s3: aws.s3, bucket: deps.bucketFrom(o), actor: deps.actor() },
          ref,
          { template: o.template, size: o.size, instanceType: o.instanceType, subnetPool: o.subnetPool, vars: o.var },
        );
        const summary = { shard: ref.shard, tenant: ref.tenant, group: ref.group, kind: result.kind, size: result.group.size, template: result.group.template, instanceType: result.group.instanceType, subnetPool: result.group.subnetPool, vars: result.group.vars, runs: [result.run] };
        if (o.json) {
          if (o.wait) await waitForConvergence(client, ref, { timeoutMs: parseDuration(o.timeout), size: result.group.size });
          return print(json(summary));
        }
        print(`${target}: ${result.kind === 'override' ? 'override of the config.jsonc group' : 'dynamic group'} stored (size ${summary.size}, ${summary.instanceType})\n${deps.links([result.run])}`);
        if (o.wait) await waitConverged(client, ref, result.group.size, o.timeout);
      });
    });

  group
    .command('delete')
    .description('delete a dynamic group (its instances drain, then it ends) or the override of a config.jsonc group')
    .argument('<tenant/group>', 'the group')
    .option('--shard <shard>', 'shard (default NSTANCE_SHARD)')
    .option('--bucket <bucket>', 'S3 bucket (default NSTANCE_BUCKET)')
    .option('--wait', 'show progress until the group has drained and ended (a dynamic group) or converged (an override)')
    .option('--timeout <duration>', 'with --wait: give up after this long (exit 1)', parseTimeout, '10m')
    .option('--json', 'machine-readable output')
    .action(async (target: string, o: Common & { wait?: boolean; timeout: string }) => {
      const ref = parseGroupRef(target, deps.shardFrom(o));
      await deps.withClients(async (client, aws) => {
        const result = await deleteGroup({ client, s3: aws.s3, bucket: deps.bucketFrom(o), actor: deps.actor() }, ref);
        const runs = await withRunIds(client, result.run ? [result.run] : []);
        if (o.json) {
          if (o.wait && result.kind === 'dynamic') await waitEnded(client, ref, o.timeout);
          return print(json({ shard: ref.shard, tenant: ref.tenant, group: ref.group, kind: result.kind, runs }));
        }
        print(`${target}: ${result.kind === 'override' ? 'override removed (back to config.jsonc)' : 'deleted (its instances drain)'}\n${deps.links(runs)}`);
        if (o.wait && result.kind === 'dynamic') await waitEnded(client, ref, o.timeout);
      });
    });

  group
    .command('list')
    .description('every group of the shard: size, template, instance type, subnet pool, static or dynamic, overridden fields')
    .option('--shard <shard>', 'shard (default NSTANCE_SHARD)')
    .option('--bucket <bucket>', 'S3 bucket (default NSTANCE_BUCKET)')
    .option('--json', 'machine-readable output')
    .action(async (o: Common) => {
      const rows = await deps.withClients((_client, aws) => listGroups({ s3: aws.s3, bucket: deps.bucketFrom(o) }, deps.shardFrom(o)));
      print(
        o.json
          ? json(rows)
          : table(['group', 'size', 'template', 'instance type', 'subnet pool', 'source', 'overrides'], rows.map((r) => [`${r.tenant}/${r.group}`, r.size, r.template, r.instanceType, r.subnetPool, r.static ? 'config' : 'dynamic', r.overrides.join(', ')])),
      );
    });

  group
    .command('status')
    .description("one group: its config (template, size, instance type, subnet pool, vars) and its workflow's counts, drift and replacements")
    .argument('<tenant/group>', 'the group')
    .option('--shard <shard>', 'shard (default NSTANCE_SHARD)')
    .option('--bucket <bucket>', 'S3 bucket (default NSTANCE_BUCKET)')
    .option('--wait', 'show progress until no member is drifted or being replaced and the group serves its size (a rotation)')
    .option('--timeout <duration>', 'with --wait: give up after this long (exit 1)', parseTimeout, '30m')
    .option('--json', 'machine-readable output')
    .action(async (target: string, o: Common & { wait?: boolean; timeout: string }) => {
      const ref = parseGroupRef(target, deps.shardFrom(o));
      const r = await deps.withClients(async (client, aws) => {
        const read = () => groupStatusReport({ client, s3: aws.s3, bucket: deps.bucketFrom(o) }, ref);
        return o.wait ? waitRotated(client, ref, read, o.timeout, !o.json) : read();
      });
      if (o.json) return print(json(r));
      const lines = [
        `${target} (${r.static ? 'config.jsonc' : 'groups.jsonc'}${r.overrides.length ? `, overridden: ${r.overrides.join(', ')}` : ''})`,
        `  template ${r.template} · size ${r.size} · ${r.instanceType} · subnet pool ${r.subnetPool} · load balancers ${r.loadBalancers.join(', ') || '-'}`,
        `  vars: ${Object.entries(r.vars).map(([k, v]) => `${k}=${v}`).join(', ') || '-'}`,
      ];
      if (!r.live) lines.push('  no group workflow runs (apply the config, or `nstance config refresh`)');
      else {
        const l = r.live;
        lines.push(`  desired ${l.desired} · running ${l.running} (in service ${l.inService}) · pending ${l.pending} · draining ${l.draining}`);
        if (l.drifted > 0) lines.push(`  drifted: ${l.drifted} member(s) (${l.driftFields.join(', ')} changed): rotating within max_surge`);
        const replacing = Object.entries(l.replacing);
        if (replacing.length > 0) lines.push(`  being replaced: ${replacing.map(([why, n]) => `${n} ${why}`).join(', ')}`);
        if (l.lastError) lines.push(`  last error: ${l.lastError}`);
      }
      print(lines.join('\n'));
    });
}

export function addConfigAdminCommands(config: Command, deps: AdminDeps): void {
  config
    .command('status')
    .description("what is applied (config.jsonc and groups.jsonc ETags) and, per group, whether its workflow runs and the size it works towards")
    .option('--shard <shard>', 'shard (default NSTANCE_SHARD)')
    .option('--bucket <bucket>', 'S3 bucket (default NSTANCE_BUCKET)')
    .option('--json', 'machine-readable output')
    .action(async (o: Common) => {
      const s = await deps.withClients((client, aws) => configStatus({ client, s3: aws.s3, bucket: deps.bucketFrom(o), shard: deps.shardFrom(o) }));
      if (o.json) return print(json(s));
      const head = `shard ${s.shard} (cluster ${s.config.cluster}): s3://${s.bucket}/${s.config.key} ETag ${s.config.etag}; ${s.groupsFile.key} ${s.groupsFile.etag ? `ETag ${s.groupsFile.etag}` : 'absent'}`;
      const rows = s.groups.map((g) => [g.group, g.size, g.running ? 'yes' : 'no', g.desired, g.lastError]);
      const tail = [s.leaving.length ? `leaving (no longer configured): ${s.leaving.join(', ')}` : '', s.orphanOverrides.length ? `ignored overrides of removed groups: ${s.orphanOverrides.join(', ')}` : ''].filter(Boolean);
      print([head, table(['group', 'size', 'workflow', 'desired', 'last error'], rows), ...tail].join('\n'));
    });

  config
    .command('refresh')
    .description('make every group re-read config.jsonc and groups.jsonc now (starting any group workflow that does not run)')
    .option('--shard <shard>', 'shard (default NSTANCE_SHARD)')
    .option('--bucket <bucket>', 'S3 bucket (default NSTANCE_BUCKET)')
    .option('--json', 'machine-readable output')
    .action(async (o: Common) => {
      const r = await deps.withClients(async (client, aws) => {
        const refreshed = await configRefresh({ client, s3: aws.s3, bucket: deps.bucketFrom(o), shard: deps.shardFrom(o), actor: deps.actor() });
        return { ...refreshed, runs: await withRunIds(client, refreshed.runs) };
      });
      print(o.json ? json(r) : `refreshed ${r.signalled.length} group(s) of shard ${r.shard}${r.leaving.length ? `; ${r.leaving.length} leaving` : ''}\n${deps.links(r.runs)}`);
    });
}
