/** `nstance plan`: reads what is applied now (S3) and the running groups' members (Temporal), then computes the plan. */
import type { Client } from '@temporalio/client';
import type { S3Client } from '@aws-sdk/client-s3';
import { WorkflowNotFoundError } from '@temporalio/client';
import { parseDocumentText, validateConfigValue } from '../../common/config';
import { checkLaunchArgsGrantable } from '../../common/iam/launch-args';
import type { GroupStatus } from '../../common/types';
import { ShardConfigStore } from '../../adapters/s3/config-store';
import { ObjectStore } from '../../adapters/s3/objects';
import { newIamActions as minimalIamActions } from './iam-actions';
import { computePlan, type NewIamActions, type Plan } from './plan-diff';
import { groupStatusWithMembers } from './status';

export interface PlanOptions {
  client: Client;
  s3: S3Client;
  text: string;
  file: string;
  bucket?: string;
  /** The IAM seam; the minimal derivation from this project's AWS calls by default. */
  newIamActions?: NewIamActions;
}

export interface PlanResult extends Plan {
  bucket: string;
  /** The ETag of the config.jsonc the plan was made against (absent: none applied yet). */
  baseEtag?: string;
}

export async function planConfig(options: PlanOptions): Promise<PlanResult> {
  const next = validateConfigValue(parseDocumentText(options.text, options.file), options.file);
  checkLaunchArgsGrantable(next, options.file);
  const bucket = options.bucket ?? next.cluster.storage.bucket;
  const store = new ShardConfigStore(new ObjectStore({ s3: options.s3, bucket }), next.shard.id);
  const [stored, { dynamic }] = await Promise.all([store.readConfig(), store.readDynamic()]);
  const previous = stored ? { config: stored.config, dynamic } : undefined;
  // Members are read only for groups whose launch changes: a plan that rotates nothing asks Temporal nothing.
  const first = computePlan({ previous, next, newIamActions: options.newIamActions ?? minimalIamActions });
  const running = new Map<string, GroupStatus>();
  await Promise.all(
    first.groups.rotating.map(async (r) => {
      const [tenant, group] = r.group.split('/');
      try {
        running.set(r.group, await groupStatusWithMembers(options.client, { shard: next.shard.id, tenant, group }));
      } catch (err) {
        // Not running: the plan counts the group's size instead (GroupRotation.counted is false).
        if (!(err instanceof WorkflowNotFoundError)) throw err;
      }
    }),
  );
  const plan = running.size > 0 ? computePlan({ previous, next, running, newIamActions: options.newIamActions ?? minimalIamActions }) : first;
  return { ...plan, bucket, ...(stored ? { baseEtag: stored.etag } : {}) };
}
