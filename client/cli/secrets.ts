/**
 * `nstance secrets list|get|put|delete|rotate-key`: custom secrets under cluster.secrets.prefix
 * in the store the shard's config names, and the durable key rotation with a progress bar.
 */
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { awsClientOptionsFromEnv, createAwsClients, destroyAwsClients } from '../../adapters/aws/clients';
import { clientEnv, connectClient } from '../connection';
import { deleteSecret, followKeyRotation, getSecret, openSecrets, putSecret, startKeyRotation, type OpenedSecrets } from '../ops/secrets';
import { json, table } from './output';
import { rotationProgress } from './progress';
import type { RunRef } from './ui-links';

export interface SecretsCliDeps {
  actor: () => string;
  shardFrom: (options: { shard?: string }) => string;
  bucketFrom: (options: { bucket?: string }) => string;
  /** "Web UI: <link>" lines for runs (the program's --ui-url, else from the Temporal address). */
  links: (runs: RunRef[]) => string;
}

interface Common {
  shard?: string;
  bucket?: string;
  json?: boolean;
}

const positive = (text: string) => {
  if (!/^[1-9]\d*$/.test(text)) throw new InvalidArgumentError('expected a positive whole number');
  return Number(text);
};

function readStdin(): string {
  try {
    return readFileSync(0, 'utf8');
  } catch (err) {
    throw new Error(`reading the value from stdin: ${(err as Error).message}`, { cause: err });
  }
}

/** A bare ENOENT names neither the flag nor the file; say which, as --token-file does. */
function readValueFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`--file: cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}

export function secretsCommand(deps: SecretsCliDeps): Command {
  const withStore = async <T>(options: Common, body: (opened: OpenedSecrets) => Promise<T>): Promise<T> => {
    const aws = createAwsClients(awsClientOptionsFromEnv());
    try {
      return await body(await openSecrets({ aws, bucket: deps.bucketFrom(options), shard: deps.shardFrom(options), actor: deps.actor() }));
    } finally {
      destroyAwsClients(aws);
    }
  };
  const scoped = (c: Command) => c.option('--shard <shard>', 'shard whose config names the store (default NSTANCE_SHARD)').option('--bucket <bucket>', 'S3 bucket (default NSTANCE_BUCKET)').option('--json', 'machine-readable output');

  const secrets = new Command('secrets').description('custom secrets under cluster.secrets.prefix, and encryption key rotation');

  scoped(secrets.command('list').description('names of the secrets (never values), optionally under a sub-prefix').argument('[under]', 'e.g. files/default/web/', '')).action(
    async (under: string, options: Common) => {
      const rows = await withStore(options, async ({ store }) => (await store.list(under)).map((name) => ({ name, location: store.locate(name) })));
      if (options.json) return void process.stdout.write(`${json(rows)}\n`);
      process.stdout.write(`${table(['name', 'location'], rows.map((r) => [r.name, r.location]))}\n`);
    },
  );

  scoped(secrets.command('get').description('one secret: redacted unless --reveal').argument('<name>', 'e.g. files/default/web/etc/app/token').option('--reveal', 'print the value')).action(
    async (name: string, options: Common & { reveal?: boolean }) => {
      const view = await withStore(options, (opened) => getSecret(opened, name, options.reveal === true));
      if (options.json) return void process.stdout.write(`${json(view)}\n`);
      if (view.value !== undefined) return void process.stdout.write(view.value.endsWith('\n') ? view.value : `${view.value}\n`);
      process.stdout.write(`${view.name} (${view.location}): <redacted, ${view.bytes} bytes>; --reveal prints it\n`);
    },
  );

  scoped(
    secrets
      .command('put')
      .description('create or replace a secret (audited); the value from --file, --value or stdin')
      .argument('<name>', 'e.g. files/default/web/etc/app/token')
      .option('--file <file>', 'read the value from a file')
      .option('--value <value>', 'the value itself (it stays in your shell history: prefer --file or stdin)'),
  ).action(async (name: string, options: Common & { file?: string; value?: string }) => {
    if (options.file !== undefined && options.value !== undefined) throw new Error('give --file or --value, not both');
    const value = options.value ?? (options.file !== undefined ? readValueFile(options.file) : readStdin());
    const result = await withStore(options, (opened) => putSecret(opened, name, value));
    if (options.json) return void process.stdout.write(`${json(result)}\n`);
    process.stdout.write(`${result.created ? 'created' : 'replaced'} ${result.name} (${result.location}, ${result.bytes} bytes)\n`);
  });

  scoped(secrets.command('delete').description('delete a secret (audited)').argument('<name>', 'the secret')).action(async (name: string, options: Common) => {
    const result = await withStore(options, (opened) => deleteSecret(opened, name));
    if (options.json) return void process.stdout.write(`${json(result)}\n`);
    if (!result.deleted) throw new Error(`no secret "${name}" (${result.location})`);
    process.stdout.write(`deleted ${result.name} (${result.location})\n`);
  });

  secrets
    .command('rotate-key')
    .description(
      're-encrypt every object-storage secret under cluster.secrets.encryption_key (keep the previous key in old_encryption_keys until it ends); a durable workflow: resumes after a crash, asking again attaches to it',
    )
    .option('--shard <shard>', 'shard (default NSTANCE_SHARD)')
    .option('--no-wait', 'start it and return')
    .option('--page-size <n>', 'secrets per activity', positive, 100)
    .option('--json', 'machine-readable result')
    .action(async (options: { shard?: string; wait: boolean; pageSize: number; json?: boolean }) => {
      const shard = deps.shardFrom(options);
      const { client, close } = await connectClient(clientEnv());
      try {
        const handle = await startKeyRotation(client, { shard, actor: deps.actor(), pageSize: options.pageSize });
        // The run started, or the one already running that this attached to.
        const runs: RunRef[] = [{ workflowId: handle.workflowId, runId: handle.firstExecutionRunId }];
        if (!options.wait) {
          if (options.json) return void process.stdout.write(`${json({ shard, workflowId: handle.workflowId, runs })}\n`);
          return void process.stdout.write(`key rotation running as workflow ${handle.workflowId}\n${deps.links(runs)}`);
        }
        if (!options.json) process.stdout.write(deps.links(runs));
        const progress = rotationProgress(process.stderr, options.json === true);
        const result = await followKeyRotation(client, shard, (p) => progress.show(p)).finally(() => progress.stop());
        if (options.json) return void process.stdout.write(`${json({ ...result, runs })}\n`);
        process.stdout.write(
          `key rotation ${result.status}: every secret checked in ${result.passes} pass(es); ${result.totals.rewritten} re-encrypted under key ${result.keyId}\n`,
        );
        if (result.status !== 'done') {
          throw new Error(`${result.lastPass.unreadable} secret(s) readable by no configured key (${result.unreadable.join(', ')}), ${result.lastPass.rewritten} still changing: keep old_encryption_keys`);
        }
        process.stdout.write('no secret is left under an old key: old_encryption_keys may now be removed from the config\n');
      } finally {
        await close();
      }
    });

  return secrets;
}
