/**
 * The shard's instances whose agents should be reporting health: what a new leader
 * seeds its health tracker with. Two sources, because neither alone is complete:
 * visibility (instance workflows in phase registered or in-service) lags a moment
 * behind a registration, and the groups (queried directly, so consistent) only hear
 * of an instance once it is in service.
 */
import type { Client } from '@temporalio/client';
import { groupWorkflowId, instanceWorkflowId } from '../../common/names';
import { runningInShard } from '../../common/search-attributes';
import { groupStatusWithMembers } from '../../client/ops/status';
import { parseGroupRef } from '../../client/ops/groups-signal';

export async function registeredInstances(client: Client, shard: string): Promise<string[]> {
  const ids = new Set<string>();
  const prefix = instanceWorkflowId(shard, '');
  for await (const execution of client.workflow.list({ query: `${runningInShard('instanceWorkflow', shard)} AND NstancePhase IN ('registered', 'in-service')` })) {
    if (execution.workflowId.startsWith(prefix)) ids.add(execution.workflowId.slice(prefix.length));
  }
  // Group workflows live for ever, so visibility has long listed them. Their members come by page, in service only.
  const groups: string[] = [];
  const groupPrefix = groupWorkflowId(shard, '', '').slice(0, -1);
  for await (const execution of client.workflow.list({ query: runningInShard('groupWorkflow', shard) })) {
    if (execution.workflowId.startsWith(groupPrefix)) groups.push(execution.workflowId.slice(groupPrefix.length));
  }
  const statuses = await Promise.all(groups.map((name) => groupStatusWithMembers(client, parseGroupRef(name, shard), { phases: ['in-service'] })));
  for (const status of statuses) {
    for (const m of status.members) if (!m.leaving) ids.add(m.instanceId);
  }
  return [...ids].sort();
}
