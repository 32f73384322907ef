import type { Client } from '@temporalio/client';
import { groupWorkflowId, instanceWorkflowId } from '../../common/names';
import { queryLiteral, runningInShard, SA } from '../../common/search-attributes';
import type { GroupRef } from '../../common/types';
import { instanceCommandSignal, type InstanceCommand } from '../../workflows/definitions';
import { groupStatus } from './status';
import { parseGroupRef } from './groups-signal';

/**
 * Finds the group an instance belongs to (by nstance id or EC2 instance id) through its
 * instance workflow's search attributes, then asks that group whether it counts it: one
 * look-up whatever the size of the shard, not a scan of every member.
 */
export async function findInstanceGroup(client: Client, shard: string, id: string): Promise<{ group: GroupRef; instanceId: string }> {
  const prefix = instanceWorkflowId(shard, '');
  const candidates: { instanceId: string; group?: string }[] = [];
  const query = `${runningInShard('instanceWorkflow', shard)} AND (NstanceInstanceId = ${queryLiteral(id)} OR WorkflowId = ${queryLiteral(`${prefix}${id}`)})`;
  for await (const execution of client.workflow.list({ query })) {
    if (execution.workflowId.startsWith(prefix)) {
      candidates.push({ instanceId: execution.workflowId.slice(prefix.length), group: execution.typedSearchAttributes.get(SA.NstanceGroup) });
    }
  }
  for (const candidate of candidates) {
    if (!candidate.group) continue;
    const group = parseGroupRef(candidate.group, shard);
    const status = await groupStatus(client, group, { instanceIds: [candidate.instanceId], limit: 1 }).catch(() => undefined);
    if (status?.members.some((m) => m.instanceId === candidate.instanceId)) return { group, instanceId: candidate.instanceId };
  }
  throw new Error(`instance "${id}" is not a member of any group in shard "${shard}" (give its nstance id or EC2 instance id)`);
}

/**
 * Asks the instance's group to drain it (then replace it: the group stays at
 * size) or to replace it (create-before-destroy). The group decides, so the
 * request cannot race its own reconcile.
 */
export async function commandInstance(client: Client, shard: string, id: string, action: InstanceCommand['action'], actor: string): Promise<{ instanceId: string; group: string }> {
  const { group, instanceId } = await findInstanceGroup(client, shard, id);
  await client.workflow.getHandle(groupWorkflowId(shard, group.tenant, group.group)).signal(instanceCommandSignal, { instanceId, action, actor });
  return { instanceId, group: `${group.tenant}/${group.group}` };
}
