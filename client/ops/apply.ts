import type { Client } from '@temporalio/client';
import type { S3Client } from '@aws-sdk/client-s3';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { checkShardZone, type ShardAccountEc2 } from '../../adapters/ec2/zones';
import {
  isSizeOverride,
  isYamlFile,
  parseDocumentText,
  validateConfigValue,
  resolveGroups,
  validateDynamicGroups,
  type DynamicGroups,
  type NstanceConfig,
} from '../../common/config';
import { checkLaunchArgsGrantable } from '../../common/iam/launch-args';
import { s3Keys } from '../../common/names';
import type { GroupRef } from '../../common/types';
import { writeAudit } from '../../adapters/s3/audit';
import { conditionFor, ShardConfigStore } from '../../adapters/s3/config-store';
import { ObjectStore, WriteConflictError } from '../../adapters/s3/objects';
import { ensureGarbageCollector, signalGroup, signalGroupIfRunning, type SignalledRun } from './groups-signal';

export interface ApplyOptions {
  client: Client;
  s3: S3Client;
  /** The config file's text and name (the name is used in error messages and picks YAML vs JSONC). */
  text: string;
  file: string;
  /** Overrides cluster.storage.bucket (NSTANCE_BUCKET). */
  bucket?: string;
  actor: string;
  now?: () => Date;
  /** The config.jsonc ETag a plan was shown for (null: none applied then); another one stored now fails the apply. */
  expectEtag?: string | null;
  /** When given, the shard's zone (name or AZ ID) is resolved and every pool subnet checked to be in it. */
  ec2?: Pick<EC2Client, 'send'>;
  /** Instead of `ec2`: the client for the config's shard account (shardAccountEc2: the role's, with assume_role). */
  shardEc2?: (config: NstanceConfig) => ShardAccountEc2;
}

export interface ApplyResult {
  shard: string;
  bucket: string;
  groups: { tenant: string; group: string; size: number }[];
  removedGroups: string[];
  /** Scale overrides dropped because the applied config sets a new size for that group. */
  droppedOverrides: string[];
  /** The group workflows signalled (or started) and the shard's garbage collector, for Web UI links. */
  runs: SignalledRun[];
}

/**
 * Validates and stores a shard config, then wakes its group workflows.
 *
 * Both files are written conditionally on the versions read at the start, so
 * a concurrent apply or dynamic-group write makes this apply fail with a
 * conflict instead of silently undoing the other write. groups.jsonc is
 * written first and restored if the config write then loses its race.
 */
export async function applyConfig(options: ApplyOptions): Promise<ApplyResult> {
  const document = parseDocumentText(options.text, options.file);
  const config = validateConfigValue(document, options.file);
  // Refused here, not when a stored config is read: a worker keeps running on what it was given.
  checkLaunchArgsGrantable(config, options.file);
  if (options.shardEc2) {
    const reader = options.shardEc2(config);
    try {
      await checkShardZone(reader.ec2, config, options.file);
    } finally {
      reader.release();
    }
  } else if (options.ec2) await checkShardZone(options.ec2, config, options.file);
  const shard = config.shard.id;
  const bucket = options.bucket ?? config.cluster.storage.bucket;
  const objects = new ObjectStore({ s3: options.s3, bucket });
  const store = new ShardConfigStore(objects, shard);

  const [previous, current] = await Promise.all([store.readConfig(), store.readDynamic()]);
  if (options.expectEtag !== undefined && (previous?.etag ?? null) !== options.expectEtag) {
    throw new WriteConflictError(s3Keys.config(shard), `s3://${bucket}/${s3Keys.config(shard)} changed since the plan was made (another apply?): run the plan again`);
  }
  const { dynamic: nextDynamic, dropped } = dropChangedSizeOverrides(previous?.config, config, current.dynamic);
  validateDynamicGroups(config, nextDynamic, `s3://${bucket}/${s3Keys.groups(shard)}`);

  let groupsEtag = current.etag;
  if (dropped.length > 0) groupsEtag = await store.writeDynamic(nextDynamic, conditionFor(current.etag));
  let configEtag: string;
  try {
    configEtag = await store.writeConfig(storedText(options.text, options.file, document), conditionFor(previous?.etag));
  } catch (err) {
    if (dropped.length > 0 && groupsEtag !== undefined) {
      try {
        await store.writeDynamic(current.dynamic, { etag: groupsEtag });
      } catch (restoreErr) {
        // Say so rather than lose the overrides silently: the operator can re-run `group scale`.
        throw new Error(
          `${(err as Error).message}; and groups.jsonc could not be restored (${(restoreErr as Error).message}): the size overrides of ${dropped.join(', ')} may be gone, re-run \`nstance group scale\` for them`,
          { cause: err },
        );
      }
    }
    throw err;
  }

  const resolved = resolveGroups(config, nextDynamic);
  const groups = resolved.map((g) => ({ tenant: g.tenant, group: g.group, size: g.size }));
  const kept = new Set(groups.map((g) => `${g.tenant}/${g.group}`));
  const removed = previous
    ? resolveGroups(previous.config, current.dynamic).filter((g) => !kept.has(`${g.tenant}/${g.group}`))
    : [];

  await writeAudit(
    objects,
    {
      shard,
      action: 'config.apply',
      actor: options.actor,
      at: (options.now ?? (() => new Date()))().toISOString(),
      details: { file: options.file, etag: configEtag, previousEtag: previous?.etag, groups, removedGroups: removed.map((g) => `${g.tenant}/${g.group}`), droppedOverrides: dropped },
    },
    `config.apply/${shard}/${configEtag}`,
  );

  const request = { reason: 'config-applied', actor: options.actor };
  const runs: SignalledRun[] = [];
  for (const g of resolved) runs.push(await signalGroup(options.client, { shard, tenant: g.tenant, group: g.group }, request, { size: g.size, template: g.template }));
  for (const g of removed) await signalGroupIfRunning(options.client, { shard, tenant: g.tenant, group: g.group } as GroupRef, request);
  runs.push(await ensureGarbageCollector(options.client, shard));

  return { shard, bucket, groups, removedGroups: removed.map((g) => `${g.tenant}/${g.group}`), droppedOverrides: dropped, runs };
}

/**
 * The text stored at config.jsonc: a JSONC file as written (its comments are worth
 * keeping); a YAML file as the JSON of the same document, because every reader of
 * that key parses JSONC.
 */
export function storedText(text: string, file: string, document: unknown): string {
  if (!isYamlFile(file)) return text;
  return `// applied from ${file.replace(/[\r\n]/g, ' ')} (YAML), stored as JSON\n${JSON.stringify(document, null, 2)}\n`;
}

/**
 * A size the operator just changed in config.jsonc should win over an older
 * `group scale`; a size left untouched keeps its scale override; a group the config
 * no longer has takes its override with it.
 */
export function dropChangedSizeOverrides(
  previous: NstanceConfig | undefined,
  next: NstanceConfig,
  dynamic: DynamicGroups,
): { dynamic: DynamicGroups; dropped: string[] } {
  const out: DynamicGroups = { groups: {} };
  const dropped: string[] = [];
  for (const [tenant, entries] of Object.entries(dynamic.groups)) {
    for (const [group, entry] of Object.entries(entries)) {
      const before = previous?.groups?.[tenant]?.[group]?.size;
      const after = next.groups?.[tenant]?.[group]?.size;
      // Also dropped when the group leaves the config: the override would outlive its group.
      if (isSizeOverride(entry) && (after === undefined || (entry.size !== undefined && before !== after))) {
        dropped.push(`${tenant}/${group}`);
        // The config's new size wins; the override's instance type and vars stay while the group does.
        const { size: _size, ...rest } = entry;
        void _size;
        if (after !== undefined && Object.keys(rest).length > 0) (out.groups[tenant] ??= {})[group] = rest;
        continue;
      }
      (out.groups[tenant] ??= {})[group] = entry;
    }
  }
  return { dynamic: out, dropped };
}
