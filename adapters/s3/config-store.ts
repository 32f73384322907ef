import {
  ConfigValidationError,
  emptyDynamicGroups,
  parseConfigText,
  parseDynamicGroupsText,
  serializeDynamicGroups,
  validateDynamicGroups,
  withoutOrphanOverrides,
  type DynamicGroups,
  type NstanceConfig,
} from '../../common/config';
import { s3Keys } from '../../common/names';
import { ObjectStore, type WriteCondition } from './objects';

export interface ShardConfigSnapshot {
  config: NstanceConfig;
  configEtag: string;
  dynamic: DynamicGroups;
  /** Absent when no groups.jsonc has been written yet. */
  groupsEtag?: string;
  /** Size overrides left for groups the config no longer has (ignored; see withoutOrphanOverrides). */
  orphanOverrides: string[];
}



/** The shard's config.jsonc and groups.jsonc in S3, validated on every read. */
export class ShardConfigStore {
  constructor(
    private readonly objects: ObjectStore,
    readonly shard: string,
  ) {}

  private location(key: string): string {
    return `s3://${this.objects.bucket}/${key}`;
  }

  async readConfig(): Promise<{ config: NstanceConfig; etag: string } | undefined> {
    const key = s3Keys.config(this.shard);
    const found = await this.objects.read(key);
    if (!found) return undefined;
    return { config: parseConfigText(found.text, this.location(key)), etag: found.etag };
  }

  async readDynamic(): Promise<{ dynamic: DynamicGroups; etag?: string }> {
    const key = s3Keys.groups(this.shard);
    const found = await this.objects.read(key);
    if (!found) return { dynamic: emptyDynamicGroups() };
    return { dynamic: parseDynamicGroupsText(found.text, this.location(key)), etag: found.etag };
  }

  /** Both files; undefined when the shard has no config yet. Dynamic groups are checked against the config. */
  async load(): Promise<ShardConfigSnapshot | undefined> {
    const [stored, { dynamic, etag }] = await Promise.all([this.readConfig(), this.readDynamic()]);
    if (!stored) return undefined;
    const { dynamic: kept, orphans } = withoutOrphanOverrides(stored.config, dynamic);
    validateDynamicGroups(stored.config, kept, this.location(s3Keys.groups(this.shard)));
    return { config: stored.config, configEtag: stored.etag, dynamic: kept, groupsEtag: etag, orphanOverrides: orphans };
  }

  async writeConfig(text: string, condition: WriteCondition): Promise<string> {
    return this.objects.write(s3Keys.config(this.shard), text, condition);
  }

  async writeDynamic(dynamic: DynamicGroups, condition: WriteCondition): Promise<string> {
    return this.objects.write(s3Keys.groups(this.shard), serializeDynamicGroups(dynamic), condition);
  }
}

export function conditionFor(etag: string | undefined): WriteCondition {
  return etag === undefined ? { absent: true } : { etag };
}

export { ConfigValidationError };
