/**
 * "Nothing more", resource by resource: each Resource pattern of each statement must have matched a call
 * the statement allowed. Patterns are compared across test files by their shape: what is one file's own
 * (its bucket, shard, cluster, secrets prefix, key sources, and the ids of its subnets, security groups,
 * ENIs, target groups and roles) is replaced by a placeholder, so `arn:aws:s3:::{bucket}/cluster/ca.crt`
 * offered in one file is used by a call in another, and a statement naming two subnets of a pool is
 * satisfied by a launch into either (they are one grant of the same kind, listed from the config).
 */
import type { NstanceConfig } from '../../common/config';
import { secretsPrefix } from '../../common/config/secrets';
import type { PolicyDocument } from '../../common/iam/policy';
import type { StatementActions } from './iam-usage';

/** Sid → resource shapes. */
export type StatementResources = StatementActions;

export interface ResourceUsage {
  offered: StatementResources;
  used: StatementResources;
}

/** IAM's ARN matching: `*` any run of characters, `?` any one; everything else literally. */
export function arnMatches(pattern: string, resource: string): boolean {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`).test(resource);
}

// Ids listed from the config, one grant of their kind however many the config names.
const LISTED_IDS: [RegExp, string][] = [
  [/:(subnet|security-group|key-pair|placement-group|capacity-reservation|network-interface)\/(?!\*$)[^/]+$/, ':$1/{id}'],
  [/:targetgroup\/[^*]+$/, ':targetgroup/{id}'],
  [/:role\/[^*]+$/, ':role/{role}'],
];

/** A pattern's shape: the config's own names and listed ids replaced by placeholders. */
export function resourceShape(pattern: string, config: NstanceConfig): string {
  const secrets = config.cluster.secrets;
  const keys = [...(secrets.encryption_key ? [secrets.encryption_key] : []), ...(secrets.old_encryption_keys ?? [])].map((k) => k.source);
  const own: [string, string][] = [
    [config.cluster.storage.bucket, '{bucket}'],
    [secretsPrefix(secrets), '{secrets-prefix}'],
    [config.shard.id, '{shard}'],
    [config.cluster.id, '{cluster}'],
    ...keys.map((k): [string, string] => [k.replace(/^\//, ''), '{key-source}']),
  ];
  let shape = pattern;
  // Longest first: the bucket's name may hold the shard's, the secrets prefix the cluster's.
  for (const [value, placeholder] of own.filter(([v]) => v.length > 0).sort(([a], [b]) => b.length - a.length)) shape = shape.split(value).join(placeholder);
  for (const [re, placeholder] of LISTED_IDS) shape = shape.replace(re, placeholder);
  return shape;
}

interface Credited {
  request: { action: string; resource: string };
  grants: string[];
}

const add = (into: Map<string, Set<string>>, sid: string, shape: string) => (into.get(sid) ?? into.set(sid, new Set()).get(sid))?.add(shape);
const sorted = (from: Map<string, Set<string>>): StatementResources => Object.fromEntries([...from].map(([sid, shapes]) => [sid, [...shapes].sort()]));

/**
 * The resource shapes `proven` policies offer, statement by statement, and those the `verdicts`' requests
 * matched in the statements that allowed them (as the simulator's grant reasons name them).
 */
export function resourceUsage(proven: readonly { config: NstanceConfig; policy: PolicyDocument }[], verdicts: readonly Credited[]): ResourceUsage {
  const offered = new Map<string, Set<string>>();
  const used = new Map<string, Set<string>>();
  for (const { config, policy } of proven) for (const s of policy.Statement) for (const r of s.Resource) add(offered, s.Sid, resourceShape(r, config));
  for (const v of verdicts) {
    for (const sid of v.grants) {
      for (const { config, policy } of proven) {
        for (const s of policy.Statement) {
          if (s.Sid !== sid || !s.Action.some((a) => arnMatches(a, v.request.action))) continue;
          for (const r of s.Resource) if (arnMatches(r, v.request.resource)) add(used, sid, resourceShape(r, config));
        }
      }
    }
  }
  return { offered: sorted(offered), used: sorted(used) };
}
