#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { Command, InvalidArgumentError } from 'commander';
import { awsClientOptionsFromEnv, createAwsClients, destroyAwsClients } from '../../adapters/aws/clients';
import { ConfigValidationError, parseConfigText, type NstanceConfig } from '../../common/config';
import { parseDuration } from '../../common/duration';
import { checkLaunchArgsGrantable } from '../../common/iam/launch-args';
import { groupWorkflowId } from '../../common/names';
import { runWorker, workerEnv } from '../../workers/worker';
import { agentCommand, fleetCommand } from '../agent/cli';
import { clientEnv, connectClient } from '../connection';
import { codecServerCommand } from './codec-server';
import { applyConfig } from '../ops/apply';
import { shardAccountEc2 } from '../../adapters/ec2/zones';
import { leaderCommand } from '../ops/leader-cli';
import { parseGroupRef } from '../ops/groups-signal';
import { commandInstance } from '../ops/instance';
import { scaleGroup } from '../ops/scale';
import { groupRow, groupStatuses, groupStatusWithMembers, instancePhases, instanceRows, waitForConvergence } from '../ops/status';
import { iamCommand } from './iam';
import { json, table } from './output';
import { currentRun, linkLines, uiBaseUrl, type RunRef } from './ui-links';
import { secretsCommand } from './secrets';
import { CommandExit } from './exit';
import { confirmPlan, planCommand } from './plan';
import { addConfigAdminCommands, addGroupAdminCommands } from './admin';
import { planConfig } from '../ops/plan';

function actor(): string {
  return process.env.NSTANCE_ACTOR || `cli:${safeUser()}`;
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

function shardFrom(options: { shard?: string }): string {
  const shard = options.shard ?? process.env.NSTANCE_SHARD;
  if (!shard) throw new Error('no shard: pass --shard or set NSTANCE_SHARD');
  return shard;
}

function bucketFrom(options: { bucket?: string }): string {
  const bucket = options.bucket ?? process.env.NSTANCE_BUCKET;
  if (!bucket) throw new Error('no bucket: pass --bucket or set NSTANCE_BUCKET');
  return bucket;
}

function readConfigFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}

function parseSize(text: string): number {
  if (!/^\d+$/.test(text)) throw new InvalidArgumentError('size must be a whole number, for example 3');
  return Number(text);
}

/** Runs a command body with a Temporal client and AWS clients, closing both afterwards. */
async function withClients<T>(body: (c: Awaited<ReturnType<typeof connectClient>>['client'], aws: ReturnType<typeof createAwsClients>) => Promise<T>): Promise<T> {
  const aws = createAwsClients(awsClientOptionsFromEnv());
  const { client, close } = await connectClient(clientEnv());
  try {
    return await body(client, aws);
  } finally {
    await close();
    destroyAwsClients(aws);
  }
}

export function buildProgram(): Command {
  const program = new Command('nstance')
    .description('Nstance on Temporal: keep EC2 groups at size with durable workflows')
    .showHelpAfterError()
    .option('--ui-url <url>', 'Temporal Web UI base URL for the links printed (default NSTANCE_UI_URL, else from TEMPORAL_ADDRESS: port + 1000)');
  const links = (runs: RunRef[]) => {
    const env = clientEnv();
    return linkLines(uiBaseUrl(program.opts<{ uiUrl?: string }>().uiUrl, env.address), env.namespace, runs);
  };

  program
    .command('worker')
    .description('run a Temporal worker for a shard (env: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, NSTANCE_SHARD, NSTANCE_BUCKET, AWS_*)')
    .action(async () => runWorker(workerEnv()));

  const config = program.command('config').description('validate and apply shard config');
  config
    .command('validate')
    .description('validate a config file (JSONC or YAML); exit 1 with every error on stderr')
    .requiredOption('-f, --file <file>', 'config file (.jsonc, .json, .yaml, .yml)')
    .option('--json', 'machine-readable output')
    .action((options: { file: string; json?: boolean }) => {
      const parsed = parseConfigText(readConfigFile(options.file), options.file);
      checkLaunchArgsGrantable(parsed, options.file);
      const groups = Object.values(parsed.groups ?? {}).reduce((n, g) => n + Object.keys(g).length, 0);
      if (options.json) return void process.stdout.write(`${json({ file: options.file, valid: true, cluster: parsed.cluster.id, shard: parsed.shard.id, groups })}\n`);
      process.stdout.write(`${options.file}: valid (cluster ${parsed.cluster.id}, shard ${parsed.shard.id}, ${groups} groups)\n`);
    });
  config
    .command('apply')
    .description('validate, store in S3 (conditional write) and signal the group workflows')
    .requiredOption('-f, --file <file>', 'config file (.jsonc, .json, .yaml, .yml)')
    .option('--bucket <bucket>', 'S3 bucket (default: cluster.storage.bucket, or NSTANCE_BUCKET)')
    .option('--json', 'machine-readable output')
    .option('-y, --yes', 'apply without asking (on a terminal, apply shows the plan and asks first)')
    .action(async (options: { file: string; bucket?: string; json?: boolean; yes?: boolean }) => {
      const text = readConfigFile(options.file);
      const bucket = options.bucket ?? process.env.NSTANCE_BUCKET;
      const result = await withClients(async (client, aws) => {
        const plan = await planConfig({ client, s3: aws.s3, text, file: options.file, bucket });
        await confirmPlan(plan, options);
        // Applied against the config the plan was made against: a concurrent apply in between fails this one.
        // The zone check reads the shard's account: as its role when the config sets shard.infra.assume_role.
        const shardEc2 = (config: NstanceConfig) => shardAccountEc2(config, aws.ec2, awsClientOptionsFromEnv());
        return { ...(await applyConfig({ client, s3: aws.s3, shardEc2, text, file: options.file, bucket, actor: actor(), expectEtag: plan.baseEtag ?? null })), plan };
      });
      if (options.json) return void process.stdout.write(`${json(result)}\n`);
      process.stdout.write(`applied ${options.file} to shard ${result.shard} (s3://${result.bucket})\n`);
      process.stdout.write(`${table(['group', 'size'], result.groups.map((g) => [`${g.tenant}/${g.group}`, g.size]))}\n`);
      if (result.removedGroups.length > 0) process.stdout.write(`removed (scaling to 0): ${result.removedGroups.join(', ')}\n`);
      if (result.droppedOverrides.length > 0) process.stdout.write(`size overrides replaced by config: ${result.droppedOverrides.join(', ')}\n`);
      process.stdout.write(links(result.runs));
    });

  program
    .command('groups')
    .description('per group: shard, tenant, group, desired, running, in service, pending, draining, last error')
    .option('--shard <shard>', 'shard (default NSTANCE_SHARD)')
    .option('--json', 'machine-readable output')
    .action(async (options: { shard?: string; json?: boolean }) => {
      const rows = await withClients(async (client) => (await groupStatuses(client, shardFrom(options))).map(groupRow));
      if (options.json) return void process.stdout.write(`${json(rows)}\n`);
      process.stdout.write(
        `${table(['shard', 'tenant', 'group', 'desired', 'running', 'in service', 'pending', 'draining', 'last error'], rows.map((r) => [r.shard, r.tenant, r.group, r.desired, r.running, r.inService, r.pending, r.draining, r.lastError]))}\n`,
      );
    });

  program
    .command('instances')
    .description('per instance: id, EC2 instance id, group, phase, instance type, private IP, launch time')
    .option('--group <tenant/group>', 'only this group')
    .option('--shard <shard>', 'shard (default NSTANCE_SHARD)')
    .option('--json', 'machine-readable output')
    .action(async (options: { group?: string; shard?: string; json?: boolean }) => {
      const shard = shardFrom(options);
      const only = options.group ? parseGroupRef(options.group, shard) : undefined;
      const rows = await withClients(async (client) => {
        const [statuses, phases] = await Promise.all([groupStatuses(client, shard), instancePhases(client, shard)]);
        const selected = statuses.filter((s) => !only || (s.tenant === only.tenant && s.group === only.group));
        if (only && selected.length === 0) {
          const known = statuses.map((s) => `${s.tenant}/${s.group}`).sort();
          throw new Error(`--group ${only.tenant}/${only.group}: no such group in shard ${shard} (groups: ${known.join(', ') || 'none'})`);
        }
        return instanceRows(await Promise.all(selected.map((s) => groupStatusWithMembers(client, s))), phases);
      });
      if (options.json) return void process.stdout.write(`${json(rows)}\n`);
      process.stdout.write(
        `${table(['id', 'ec2 instance', 'group', 'phase', 'type', 'private ip', 'launched'], rows.map((r) => [r.id, r.ec2InstanceId, r.group, r.phase, r.instanceType, r.privateIp, r.launchedAt]))}\n`,
      );
    });

  const group = program.command('group').description('act on one group');
  group
    .command('scale')
    .description('set a group size (stored in groups.jsonc with a conditional write)')
    .argument('<tenant/group>', 'the group, for example default/web')
    .argument('<size>', 'new size', parseSize)
    .option('--shard <shard>', 'shard (default NSTANCE_SHARD)')
    .option('--bucket <bucket>', 'S3 bucket (default NSTANCE_BUCKET)')
    .option('--wait', 'show progress until the group has converged')
    .option('--timeout <duration>', 'with --wait: give up after this long (exit 1)', '10m')
    .option('--json', 'machine-readable output (with --wait: printed once converged)')
    .action(async (target: string, size: number, options: { shard?: string; bucket?: string; wait?: boolean; timeout: string; json?: boolean }) => {
      const ref = parseGroupRef(target, shardFrom(options));
      const timeoutMs = parseDuration(options.timeout);
      await withClients(async (client, aws) => {
        const result = await scaleGroup({ client, s3: aws.s3, bucket: bucketFrom(options), group: ref, size, actor: actor() });
        if (options.json) {
          if (options.wait) await waitForConvergence(client, ref, { timeoutMs, size });
          return void process.stdout.write(`${json({ shard: ref.shard, tenant: ref.tenant, group: ref.group, from: result.from, to: result.to, converged: options.wait === true })}\n`);
        }
        process.stdout.write(`${target}: size ${result.from} -> ${result.to}\n`);
        process.stdout.write(links([result.run]));
        if (!options.wait) return;
        let lastLine = '';
        await waitForConvergence(client, ref, {
          timeoutMs,
          size,
          onProgress: (s) => {
            const line = `${target}: desired ${s.desired}, running ${s.running}, pending ${s.pending}, draining ${s.draining}`;
            if (line !== lastLine) process.stdout.write(`${line}\n`);
            lastLine = line;
          },
        });
        process.stdout.write(`${target}: converged at ${size}\n`);
      });
    });

  addGroupAdminCommands(group, { withClients, shardFrom, bucketFrom, actor, links });
  addConfigAdminCommands(config, { withClients, shardFrom, bucketFrom, actor, links });

  const instance = program.command('instance').description('act on one instance');
  for (const [action, description] of [
    ['drain', 'deregister from load balancers, wait for draining, terminate (the group replaces it)'],
    ['replace', 'replace create-before-destroy: a new instance first, then drain this one'],
  ] as const) {
    instance
      .command(action)
      .description(description)
      .argument('<id>', 'nstance instance id or EC2 instance id')
      .option('--shard <shard>', 'shard (default NSTANCE_SHARD)')
      .option('--json', 'machine-readable output')
      .action(async (id: string, options: { shard?: string; json?: boolean }) => {
        const shard = shardFrom(options);
        const { result, run } = await withClients(async (client) => {
          const result = await commandInstance(client, shard, id, action, actor());
          const ref = parseGroupRef(result.group, shard);
          return { result, run: await currentRun(client, groupWorkflowId(shard, ref.tenant, ref.group)) };
        });
        if (options.json) return void process.stdout.write(`${json({ ...result, action })}\n`);
        process.stdout.write(`${result.instanceId} (${result.group}): ${action} requested\n${links([run])}`);
      });
  }

  program.addCommand(planCommand({ json, plan: (file, bucket) => withClients((client, aws) => planConfig({ client, s3: aws.s3, text: readConfigFile(file), file, bucket })) }));
  program.addCommand(leaderCommand({ actor, shardFrom }));
  program.addCommand(agentCommand());
  program.addCommand(fleetCommand());
  program.addCommand(secretsCommand({ actor, shardFrom, bucketFrom, links }));
  program.addCommand(codecServerCommand());
  program.addCommand(iamCommand());

  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommandExit) return err.code;
    if (err instanceof ConfigValidationError) {
      process.stderr.write(`${err.message}\n`);
    } else {
      process.stderr.write(`nstance: ${(err as Error).message ?? String(err)}\n`);
    }
    return 1;
  }
}

if (require.main === module) {
  void main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
