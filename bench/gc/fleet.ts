/**
 * The GC benchmark's shard: tagged instances in moto and the workflows that own most of them.
 */
import { CreateSubnetCommand, CreateTagsCommand, CreateVpcCommand, RunInstancesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import type { Client } from '@temporalio/client';
import { inParallel } from '../../activities/gc/parallel';
import { nstanceTags } from '../../adapters/ec2/instances';
import { instanceWorkflowId } from '../../common/names';
import { searchAttributeUpdates } from '../../common/search-attributes';

/**
 * What each tagged instance is:
 * - owned: its workflow runs and has recorded it (NstanceInstanceId);
 * - unrecorded: its workflow runs and has not recorded an EC2 id yet (owned by its tag alone);
 * - no-workflow: a launch nothing owns (its workflow never started);
 * - ended: its workflow has finished;
 * - duplicate: a second instance under an owned instance's id;
 * - young: nothing owns it, but it is younger than the grace.
 */
export type Role = 'owned' | 'unrecorded' | 'no-workflow' | 'ended' | 'duplicate' | 'young';
export const ORPHAN_ROLES: readonly Role[] = ['no-workflow', 'ended', 'duplicate'];

export interface Planned {
  role: Role;
  instanceId: string;
}

export interface Launched extends Planned {
  ec2InstanceId: string;
  launchedAtMs: number;
}

/** Per 1,000 tagged instances: 940 owned, 10 unrecorded, 20 with no workflow, 10 ended, 10 duplicates, 10 young. */
const PER_THOUSAND: Record<Exclude<Role, 'owned'>, number> = { unrecorded: 10, 'no-workflow': 20, ended: 10, duplicate: 10, young: 10 };

/** The shard's instances, old ones first in a fixed shuffled order (orphans spread over every page), the young last. */
export function planFleet(total: number): { old: Planned[]; young: Planned[] } {
  const count = (role: Exclude<Role, 'owned'>) => Math.max(1, Math.round((total * PER_THOUSAND[role]) / 1000));
  const others = (Object.keys(PER_THOUSAND) as Exclude<Role, 'owned'>[]).reduce((sum, role) => sum + count(role), 0);
  const id = (prefix: string, n: number) => `${prefix}${String(n).padStart(7, '0')}`;
  const old: Planned[] = [];
  const owned = Array.from({ length: total - others }, (_, n) => id('web-own', n));
  old.push(...owned.map((instanceId) => ({ role: 'owned' as const, instanceId })));
  old.push(...Array.from({ length: count('unrecorded') }, (_, n) => ({ role: 'unrecorded' as const, instanceId: id('web-unr', n) })));
  old.push(...Array.from({ length: count('no-workflow') }, (_, n) => ({ role: 'no-workflow' as const, instanceId: id('web-orp', n) })));
  old.push(...Array.from({ length: count('ended') }, (_, n) => ({ role: 'ended' as const, instanceId: id('web-end', n) })));
  old.push(...Array.from({ length: count('duplicate') }, (_, n) => ({ role: 'duplicate' as const, instanceId: owned[n * 7] as string })));
  const young = Array.from({ length: count('young') }, (_, n) => ({ role: 'young' as const, instanceId: id('web-yng', n) }));
  return { old: shuffled(old), young };
}

/** A fixed permutation (mulberry32), so every run lays the shard out the same way. */
function shuffled<T>(items: T[]): T[] {
  let seed = 0x6763;
  const random = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

/** A subnet with room for every instance (moto hands out real addresses from it). */
export async function roomySubnet(ec2: EC2Client): Promise<string> {
  const vpc = await ec2.send(new CreateVpcCommand({ CidrBlock: '10.200.0.0/16' }));
  const subnet = await ec2.send(new CreateSubnetCommand({ VpcId: vpc.Vpc?.VpcId, CidrBlock: '10.200.0.0/16' }));
  const subnetId = subnet.Subnet?.SubnetId;
  if (!subnetId) throw new Error('moto created no subnet');
  return subnetId;
}

export interface LaunchSpec {
  ec2: EC2Client;
  imageId: string;
  subnetId: string;
  clusterId: string;
  shard: string;
  /** Instances per RunInstances call (one reservation each; EC2 takes up to 1000). */
  reservation: number;
}

/**
 * Launches the planned instances tagged as ours (adapters/ec2/instances.ts nstanceTags): the tags
 * all of a reservation share at launch, then each instance's own id (nstance:instance-id and Name).
 */
export async function launchFleet(spec: LaunchSpec, planned: readonly Planned[], onProgress: (done: number) => void): Promise<Launched[]> {
  const launched: Launched[] = [];
  const identity = (instanceId: string) => ({ clusterId: spec.clusterId, shard: spec.shard, tenant: 'default', group: 'web', instanceId });
  const own = new Set(['nstance:instance-id', 'Name']);
  for (let i = 0; i < planned.length; i += spec.reservation) {
    const chunk = planned.slice(i, i + spec.reservation);
    const out = await spec.ec2.send(
      new RunInstancesCommand({
        ImageId: spec.imageId,
        InstanceType: 'm7g.large',
        SubnetId: spec.subnetId,
        MinCount: chunk.length,
        MaxCount: chunk.length,
        TagSpecifications: [{ ResourceType: 'instance', Tags: nstanceTags(identity('shared')).filter((t) => !own.has(t.Key ?? '')) }],
      }),
    );
    const instances = out.Instances ?? [];
    if (instances.length !== chunk.length) throw new Error(`RunInstances gave ${instances.length} instances, not ${chunk.length}`);
    await inParallel(instances, 16, async (instance, n) => {
      const plan = chunk[n] as Planned;
      const tags = nstanceTags(identity(plan.instanceId)).filter((t) => own.has(t.Key ?? ''));
      await spec.ec2.send(new CreateTagsCommand({ Resources: [instance.InstanceId as string], Tags: tags }));
      launched.push({ ...plan, ec2InstanceId: instance.InstanceId as string, launchedAtMs: instance.LaunchTime?.getTime() ?? Date.now() });
    });
    onProgress(launched.length);
  }
  return launched;
}

/**
 * Starts the owners: a stand-in instance workflow for each owned, unrecorded and ended instance, with
 * the search attributes ours carry set at start. The ended ones are then told to finish.
 */
export async function startOwners(client: Client, taskQueue: string, shard: string, fleet: readonly Launched[], onProgress: (done: number) => void): Promise<void> {
  const owners = fleet.filter((l) => l.role === 'owned' || l.role === 'unrecorded' || l.role === 'ended');
  let done = 0;
  await inParallel(owners, 32, async (owner) => {
    const handle = await client.workflow.start('instanceWorkflow', {
      workflowId: instanceWorkflowId(shard, owner.instanceId),
      taskQueue,
      args: [],
      typedSearchAttributes: searchAttributeUpdates({
        NstanceShard: shard,
        NstanceGroup: 'default/web',
        NstancePhase: owner.role === 'unrecorded' ? 'provisioning' : 'in-service',
        NstanceInstanceId: owner.role === 'unrecorded' ? undefined : owner.ec2InstanceId,
      }),
    });
    if (owner.role === 'ended') {
      await handle.signal('finish');
      await handle.result();
    }
    if (++done % 500 === 0) onProgress(done);
  });
  onProgress(done);
}
