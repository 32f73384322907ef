/**
 * What a group run without carried state rebuilds its members from: the group's running
 * instance workflows (visibility), and the EC2 instances tagged for it (an instance whose
 * workflow visibility does not show yet is confirmed with a consistent describe). Each
 * member's own status comes from its workflow (a query), so health, expiry and notices
 * survive the rebuild.
 */
import { DescribeInstancesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import type { Client } from '@temporalio/client';
import { instanceWorkflowId, TAG } from '../../common/names';
import { queryLiteral, runningInShard } from '../../common/search-attributes';
import type { GroupRef, InstanceUpdate, Member, Phase } from '../../common/types';
import { instanceStatusQuery } from '../../workflows/definitions';
import { packMember, type PackedMember } from '../../workflows/group-carry';
import { withAwsErrors } from '../aws/errors';
import { latestRunStatus } from './workflow-status';

export interface RebuildRequest extends GroupRef {
  /** Narrows the EC2 look-up to this cluster's tags (absent for a group removed from config). */
  clusterId?: string;
}

export interface RebuiltMembers {
  /** Oldest first (by launch, else by workflow start). */
  members: PackedMember[];
  sources: { visibility: number; ec2: number; confirmedByDescribe: number };
}

export interface RebuildDeps {
  temporal: Client;
  ec2: EC2Client;
  heartbeat: (details: string) => void;
  /** Before each DescribeInstances page (the shared EC2 token bucket). */
  beforeDescribe?: () => Promise<void>;
}

const GONE: ReadonlySet<Phase> = new Set(['terminated', 'failed']);
const LEAVING: ReadonlySet<Phase> = new Set(['draining', 'terminating']);
/** Queries in flight at once: each may replay one instance history on some worker. */
const QUERY_CONCURRENCY = 16;

export async function rebuildGroupMembers(deps: RebuildDeps, request: RebuildRequest): Promise<RebuiltMembers> {
  const group = `${request.tenant}/${request.group}`;
  const prefix = instanceWorkflowId(request.shard, '');
  const started = new Map<string, number>();
  try {
    for await (const execution of deps.temporal.workflow.list({ query: `${runningInShard('instanceWorkflow', request.shard)} AND NstanceGroup = ${queryLiteral(group)}` })) {
      if (execution.workflowId.startsWith(prefix)) started.set(execution.workflowId.slice(prefix.length), execution.startTime.getTime());
    }
  } catch (err) {
    // A server without visibility (the time-skipping test server): EC2's tags alone, each confirmed by describe.
    if (!isUnimplemented(err)) throw err;
  }
  deps.heartbeat(`visibility: ${started.size} running instance workflows`);
  const tagged = await taggedInstances(deps, request);
  deps.heartbeat(`EC2: ${tagged.size} tagged instances`);

  // Tagged in EC2 but not (yet) in visibility: visibility lags; a describe reads the execution itself.
  let confirmed = 0;
  for (const instanceId of tagged.keys()) {
    if (started.has(instanceId)) continue;
    if ((await latestRunStatus(deps.temporal, `${prefix}${instanceId}`)) === 'RUNNING') {
      started.set(instanceId, tagged.get(instanceId) ?? Date.now());
      confirmed++;
    }
  }

  const members: { member: Member; since: number }[] = [];
  const queue = [...started.keys()];
  const worker = async () => {
    for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
      const status = await deps.temporal.workflow
        .getHandle(`${prefix}${id}`)
        .query(instanceStatusQuery)
        .catch(() => undefined);
      // Gone meanwhile (closed, or past a query's reach): not a member.
      if (status && !GONE.has(status.phase)) {
        const update = status as InstanceUpdate;
        const member: Member = { ...withoutError(update), instanceId: id, seq: 0 };
        if (LEAVING.has(update.phase)) member.leaving = true;
        const launched = update.launchedAt ? Date.parse(update.launchedAt) : NaN;
        members.push({ member, since: Number.isNaN(launched) ? (started.get(id) ?? 0) : launched });
      }
      if (members.length % 200 === 0) deps.heartbeat(`queried ${members.length} of ${started.size}`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(QUERY_CONCURRENCY, queue.length) }, worker));
  members.sort((a, b) => a.since - b.since || (a.member.instanceId < b.member.instanceId ? -1 : 1));
  return {
    members: members.map(({ member }, i) => packMember({ ...member, seq: i + 1 })),
    sources: { visibility: started.size - confirmed, ec2: tagged.size, confirmedByDescribe: confirmed },
  };
}

/** gRPC UNIMPLEMENTED, as a server answers a call it does not offer. */
function isUnimplemented(err: unknown): boolean {
  const code = (err as { cause?: { code?: unknown } } | undefined)?.cause?.code;
  return code === 12;
}

function withoutError(update: InstanceUpdate): InstanceUpdate {
  const { error: _error, ...rest } = update;
  return rest;
}

/** Nstance instance id → launch time, for every live instance tagged for the group (all pages). */
async function taggedInstances(deps: RebuildDeps, request: RebuildRequest): Promise<Map<string, number>> {
  const found = new Map<string, number>();
  const filters = [
    { Name: `tag:${TAG.shard}`, Values: [request.shard] },
    { Name: `tag:${TAG.group}`, Values: [`${request.tenant}/${request.group}`] },
    { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] },
    ...(request.clusterId ? [{ Name: `tag:${TAG.clusterId}`, Values: [request.clusterId] }] : []),
  ];
  let token: string | undefined;
  do {
    await deps.beforeDescribe?.();
    const out = await withAwsErrors(`DescribeInstances for group ${request.tenant}/${request.group}`, () =>
      deps.ec2.send(new DescribeInstancesCommand({ Filters: filters, MaxResults: 1000, NextToken: token })),
    );
    for (const i of (out.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
      const id = i.Tags?.find((t) => t.Key === TAG.instanceId)?.Value;
      if (id) found.set(id, i.LaunchTime?.getTime() ?? Date.now());
    }
    token = out.NextToken || undefined;
  } while (token);
  return found;
}
