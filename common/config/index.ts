/** Nstance shard config: schema, loading, validation, dynamic groups and merging. */
export { ConfigValidationError, formatIssue, formatPath } from './issues';
export type { ConfigIssue } from './issues';
export {
  clusterSchema,
  configSchema,
  defaultsSchema,
  groupSchema,
  imageSchema,
  loadBalancerSchema,
  MAX_GROUP_SIZE,
  shardSchema,
  templateSchema,
} from './schema';
export type {
  ClusterConfig,
  GroupConfig,
  ImageConfig,
  LoadBalancerConfig,
  NstanceConfig,
  ShardConfig,
  TemplateConfig,
} from './schema';
export { RESERVED_ARGS, TEMPLATE_FIELDS, TEMPLATE_ROOTS } from './args';
export { isYamlFile, parseConfigText, parseDocumentText, validateConfigValue } from './load';
export {
  emptyDynamicGroups,
  isSizeOverride,
  parseDynamicGroupsText,
  parseDynamicGroupsValue,
  serializeDynamicGroups,
  validateDynamicGroups,
  withoutOrphanOverrides,
} from './dynamic';
export type { DynamicGroupEntry, DynamicGroups, SizeOverride } from './dynamic';
export { OVERRIDE_FIELDS } from './dynamic';
export { BASE_ARGS, mergeArgs, resolveGroup, resolveGroups, shardSettings } from './resolve';
export type { ResolvedGroup, ShardSettings } from './resolve';
