import { TAG } from '../../common/names';
import type { InstanceRun } from '../../adapters/temporal/workflow-status';
import type { TaggedInstance } from './tagged-instances';

/** A tagged instance past the grace that visibility does not show as owned: to be confirmed by a consistent describe. */
export interface Suspect {
  ec2InstanceId: string;
  /** Its nstance:instance-id tag; absent on an instance tagged for the shard without one. */
  instanceId?: string;
  launchedAt?: string;
}

export interface Sorted {
  suspects: Suspect[];
  /** Younger than the grace: never collected, owned or not. */
  young: number;
  /** Owned as visibility shows it: not looked at further. */
  owned: number;
}

/**
 * Sorts a shard's tagged instances against the owners visibility lists (instance id → the EC2 id its
 * workflow recorded, undefined until it has). An instance is a suspect when it is past the grace and
 * its instance id is not listed, or is listed with another EC2 id. Until a workflow has recorded its
 * EC2 id, any instance with its tag counts as its own (it may be the one it is launching).
 */
export function sortTagged(instances: readonly TaggedInstance[], owners: ReadonlyMap<string, string | undefined>, nowMs: number, graceMs: number): Sorted {
  const sorted: Sorted = { suspects: [], young: 0, owned: 0 };
  for (const { ec2InstanceId, instanceId, launchedAt } of instances) {
    if (nowMs - (launchedAt?.getTime() ?? nowMs) < graceMs) {
      sorted.young += 1;
      continue;
    }
    const listed = instanceId !== undefined && owners.has(instanceId);
    const recorded = instanceId !== undefined ? owners.get(instanceId) : undefined;
    if (listed && (recorded === undefined || recorded === ec2InstanceId)) {
      sorted.owned += 1;
      continue;
    }
    sorted.suspects.push({ ec2InstanceId, instanceId, launchedAt: launchedAt?.toISOString() });
  }
  return sorted;
}

/** What kind of orphan an instance is (the GC's metrics count terminations by it). */
export type OrphanKind = 'orphan' | 'duplicate' | 'untagged';

/**
 * Why a suspect is not owned, and what kind of orphan that makes it, from its workflow's latest run read
 * consistently (describe), or undefined when it is owned after all. Each answer is final: instance ids are
 * never reused, so a workflow that is not running never runs again, and the EC2 id a workflow records never changes.
 */
export function judgeSuspect(suspect: Suspect, run: InstanceRun | undefined): { why: string; kind: OrphanKind } | undefined {
  if (!suspect.instanceId || !run) return { why: `no ${TAG.instanceId} tag`, kind: 'untagged' };
  if (run.status !== 'RUNNING') return { why: `no running workflow owns ${suspect.instanceId}`, kind: 'orphan' };
  if (run.ec2InstanceId && run.ec2InstanceId !== suspect.ec2InstanceId) return { why: `a duplicate: ${suspect.instanceId}'s workflow runs ${run.ec2InstanceId}`, kind: 'duplicate' };
  return undefined;
}

export function whyNotOwned(suspect: Suspect, run: InstanceRun | undefined): string | undefined {
  return judgeSuspect(suspect, run)?.why;
}
