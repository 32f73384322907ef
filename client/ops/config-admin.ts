/**
 * `nstance config status` (what is applied, and whether each group's workflow runs and follows it) and
 * `nstance config refresh` (every group re-reads config and groups.jsonc now, as Nstance's refresh makes
 * its server reload): for a groups.jsonc edited by hand, or to nudge groups after an outage.
 */
import type { Client } from '@temporalio/client';
import type { S3Client } from '@aws-sdk/client-s3';
import { resolveGroups } from '../../common/config';
import { groupWorkflowId, s3Keys } from '../../common/names';
import { ShardConfigStore } from '../../adapters/s3/config-store';
import { ObjectStore } from '../../adapters/s3/objects';
import { ensureGarbageCollector, signalGroup, signalGroupIfRunning, type SignalledRun } from './groups-signal';
import { groupStatuses } from './status';

export interface ConfigStatus {
  shard: string;
  bucket: string;
  config: { key: string; etag: string; cluster: string };
  groupsFile: { key: string; etag?: string };
  groups: {
    group: string;
    size: number;
    /** Whether a group workflow runs for it. */
    running: boolean;
    /** The size the running workflow works towards (it may not have read the newest config yet). */
    desired?: number;
    lastError?: string;
  }[];
  /** Group workflows running for groups no longer configured (draining to zero). */
  leaving: string[];
  /** Size overrides left for groups the config no longer has (ignored). */
  orphanOverrides: string[];
}

function storeFor(s3: S3Client, bucket: string, shard: string): ShardConfigStore {
  return new ShardConfigStore(new ObjectStore({ s3, bucket }), shard);
}

export async function configStatus(options: { client: Client; s3: S3Client; bucket: string; shard: string }): Promise<ConfigStatus> {
  const snapshot = await storeFor(options.s3, options.bucket, options.shard).load();
  if (!snapshot) throw new Error(`shard "${options.shard}" has no config in s3://${options.bucket}/${s3Keys.config(options.shard)}: run "nstance config apply" first`);
  const live = new Map((await groupStatuses(options.client, options.shard)).map((s) => [`${s.tenant}/${s.group}`, s]));
  const groups = resolveGroups(snapshot.config, snapshot.dynamic).map((g) => {
    const name = `${g.tenant}/${g.group}`;
    const s = live.get(name);
    live.delete(name);
    return { group: name, size: g.size, running: s !== undefined, ...(s ? { desired: s.desired } : {}), ...(s?.lastError ? { lastError: s.lastError } : {}) };
  });
  return {
    shard: options.shard,
    bucket: options.bucket,
    config: { key: s3Keys.config(options.shard), etag: snapshot.configEtag, cluster: snapshot.config.cluster.id },
    groupsFile: { key: s3Keys.groups(options.shard), ...(snapshot.groupsEtag ? { etag: snapshot.groupsEtag } : {}) },
    groups,
    leaving: [...live.keys()].sort(),
    orphanOverrides: snapshot.orphanOverrides,
  };
}

/** `runs`: every run signalled or started (each group's, then the garbage collector's), for their Web UI links. */
export async function configRefresh(
  options: { client: Client; s3: S3Client; bucket: string; shard: string; actor: string },
): Promise<{ shard: string; signalled: string[]; leaving: string[]; runs: SignalledRun[] }> {
  const status = await configStatus(options);
  const request = { reason: 'config-refresh', actor: options.actor };
  const [shard] = [options.shard];
  const runs: SignalledRun[] = [];
  for (const g of status.groups) {
    const [tenant, group] = g.group.split('/');
    runs.push(await signalGroup(options.client, { shard, tenant, group }, request, { size: g.size }));
  }
  for (const name of status.leaving) {
    const [tenant, group] = name.split('/');
    if (await signalGroupIfRunning(options.client, { shard, tenant, group }, request)) runs.push({ workflowId: groupWorkflowId(shard, tenant, group) });
  }
  runs.push(await ensureGarbageCollector(options.client, shard));
  return { shard, signalled: status.groups.map((g) => g.group), leaving: status.leaving, runs };
}
