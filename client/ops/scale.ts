import type { Client } from '@temporalio/client';
import type { S3Client } from '@aws-sdk/client-s3';
import { isSizeOverride, MAX_GROUP_SIZE, resolveGroups, validateDynamicGroups, type DynamicGroups } from '../../common/config';
import { s3Keys } from '../../common/names';
import type { GroupRef } from '../../common/types';
import { writeAudit } from '../../adapters/s3/audit';
import { conditionFor, ShardConfigStore } from '../../adapters/s3/config-store';
import { ObjectStore, WriteConflictError } from '../../adapters/s3/objects';
import { signalGroup, type SignalledRun } from './groups-signal';

export interface ScaleOptions {
  client: Client;
  s3: S3Client;
  bucket: string;
  group: GroupRef;
  size: number;
  actor: string;
  /** Attempts when another writer changes groups.jsonc between our read and write. */
  attempts?: number;
  now?: () => Date;
}

export interface ScaleResult {
  from: number;
  to: number;
  /** The group workflow signalled, for a Web UI link. */
  run: SignalledRun;
}

/**
 * Records a new size in groups.jsonc (a size override for a config.jsonc
 * group, or the size of a dynamic group) and wakes the group. The write is
 * conditional; on a conflict the whole read-modify-write is redone, which
 * keeps the other writer's change because only this group's entry is touched.
 */
export async function scaleGroup(options: ScaleOptions): Promise<ScaleResult> {
  const { shard, tenant, group } = options.group;
  if (!Number.isInteger(options.size) || options.size < 0 || options.size > MAX_GROUP_SIZE) {
    throw new Error(`size must be a whole number from 0 to ${MAX_GROUP_SIZE}, got ${options.size}`);
  }
  const objects = new ObjectStore({ s3: options.s3, bucket: options.bucket });
  const store = new ShardConfigStore(objects, shard);
  const attempts = options.attempts ?? 3;

  for (let attempt = 1; ; attempt++) {
    const snapshot = await store.load();
    if (!snapshot) throw new Error(`shard "${shard}" has no config in s3://${options.bucket}/${s3Keys.config(shard)}: run "nstance config apply" first`);
    const current = resolveGroups(snapshot.config, snapshot.dynamic).find((g) => g.tenant === tenant && g.group === group);
    if (!current) {
      const known = resolveGroups(snapshot.config, snapshot.dynamic).map((g) => `${g.tenant}/${g.group}`);
      throw new Error(`group ${tenant}/${group} does not exist in shard "${shard}"; groups: ${known.join(', ') || '(none)'}`);
    }
    const next = withSize(snapshot.dynamic, tenant, group, options.size, snapshot.config.groups?.[tenant]?.[group]?.size);
    validateDynamicGroups(snapshot.config, next, `s3://${options.bucket}/${s3Keys.groups(shard)}`);
    try {
      await store.writeDynamic(next, conditionFor(snapshot.groupsEtag));
    } catch (err) {
      if (err instanceof WriteConflictError && attempt < attempts) continue;
      throw err;
    }
    const at = (options.now ?? (() => new Date()))().toISOString();
    await writeAudit(
      objects,
      { shard, action: 'group.scale', actor: options.actor, at, tenant, group, details: { from: current.size, to: options.size } },
      `group.scale/${shard}/${tenant}/${group}/${at}/${options.size}`,
    );
    const run = await signalGroup(options.client, options.group, { reason: 'scale-requested', actor: options.actor }, { size: options.size, template: current.template });
    return { from: current.size, to: options.size, run };
  }
}

function withSize(dynamic: DynamicGroups, tenant: string, group: string, size: number, staticSize: number | undefined): DynamicGroups {
  const out: DynamicGroups = { groups: JSON.parse(JSON.stringify(dynamic.groups)) as DynamicGroups['groups'] };
  const entries = (out.groups[tenant] ??= {});
  const entry = entries[group];
  if (entry && !isSizeOverride(entry)) entries[group] = { ...entry, size };
  else {
    // An override's instance type and vars stay; a size equal to the config's is no override.
    const { size: _old, ...rest } = entry ?? {};
    void _old;
    const next = staticSize === size ? rest : { ...rest, size };
    if (Object.keys(next).length === 0) delete entries[group];
    else entries[group] = next;
  }
  if (Object.keys(entries).length === 0) delete out.groups[tenant];
  return out;
}
