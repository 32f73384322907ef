import type { Client } from '@temporalio/client';
import { groupWorkflowId } from '../../common/names';
import type { GroupStatus } from '../../common/types';
import { instanceCommandSignal, type InstanceCommand } from '../../workflows/definitions';
import { groupStatuses } from './status';

/** Finds the group an instance belongs to (by nstance id or EC2 instance id). */
export async function findInstanceGroup(client: Client, shard: string, id: string): Promise<{ group: GroupStatus; instanceId: string }> {
  for (const group of await groupStatuses(client, shard)) {
    const member = group.members.find((m) => m.instanceId === id || m.ec2InstanceId === id);
    if (member) return { group, instanceId: member.instanceId };
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
