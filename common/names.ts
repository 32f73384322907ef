/**
 * Names shared by workflows, activities, workers and the CLI. Workflow ids are
 * deterministic so that starts are idempotent and the CLI can address any run.
 */

export function groupWorkflowId(shard: string, tenant: string, group: string): string {
  return `nstance:${shard}:group:${tenant}/${group}`;
}

export function instanceWorkflowId(shard: string, instanceId: string): string {
  return `nstance:${shard}:instance:${instanceId}`;
}

export function leaderWorkflowId(shard: string): string {
  return `nstance:${shard}:leader`;
}

export function gcWorkflowId(shard: string): string {
  return `nstance:${shard}:gc`;
}

/** Task queue polled by every worker of a shard (workflows and AWS activities). */
export function shardTaskQueue(shard: string): string {
  return `nstance.${shard}`;
}

/** Task queue polled by one worker only, so work can be pinned to that worker. */
export function workerTaskQueue(shard: string, workerId: string): string {
  return `nstance.${shard}.worker.${workerId}`;
}

/** Search attributes registered on the Temporal namespace (all Keyword). */
export const SEARCH_ATTRIBUTES = ['NstanceShard', 'NstanceGroup', 'NstanceInstanceId', 'NstancePhase'] as const;
export type SearchAttributeName = (typeof SEARCH_ATTRIBUTES)[number];

/** EC2 tags put on every instance at launch; they are how we find what we made. */
export const TAG = {
  instanceId: 'nstance:instance-id',
  clusterId: 'nstance:cluster-id',
  shard: 'nstance:shard',
  group: 'nstance:group',
  tenant: 'nstance:tenant',
  managed: 'nstance:managed',
} as const;

/** S3 keys, as laid out in DESIGN.md. */
export const s3Keys = {
  config: (shard: string) => `shard/${shard}/config.jsonc`,
  groups: (shard: string) => `shard/${shard}/groups.jsonc`,
  instance: (shard: string, tenant: string, id: string) => `shard/${shard}/instance/${tenant}.${id}.json`,
  /** The certificate files issued to an instance, kept for the next leader (workers/agent-api/certificate-file-records.ts). */
  certificateFiles: (shard: string, id: string) => `shard/${shard}/certificate-files/${id}.json`,
  auditPrefix: (shard: string) => `shard/${shard}/audit/`,
  caCert: () => 'cluster/ca.crt',
};
