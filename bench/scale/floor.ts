/**
 * The floor: what a careful user's own script gets from EC2 for N instances. The same
 * RunInstances calls as the project's (image, type, subnets, security group, profile,
 * metadata options, as many tags of the same size on the instance and its volume, a
 * userdata of the same size, one instance and a ClientToken each), through the same fault
 * proxy, at a fixed concurrency, paced by a client-side token bucket sized like EC2's
 * RunInstances bucket and retried with the SDK's standard retries; timed until EC2 shows
 * all N running. The instances carry `floor:` tags, not `nstance:` ones, so no worker,
 * fleet or garbage collector of the shard ever sees them.
 */
import { DescribeInstanceAttributeCommand, DescribeInstancesCommand, EC2Client, RunInstancesCommand, TerminateInstancesCommand, type RunInstancesCommandInput, type Tag } from '@aws-sdk/client-ec2';
import { TokenBucket } from '../../adapters/aws/token-bucket';
import { censusDiff, type CensusSnapshot } from '../../test/support/call-census';
import { EC2_BUCKETS } from '../../test/support/ec2-limits';
import { heldCurve, LedgerHeld } from './ledger';
import type { ScaleStack } from './stack';
import { confirmRunning, PhaseWatch, thin, type Confirmation, type Sample } from './watch';

export const FLOOR_TAG_PREFIX = 'floor:';

/** The launch parameters of one instance the project made, to copy. */
export interface LaunchTemplate {
  imageId: string;
  instanceType: string;
  subnetIds: string[];
  securityGroupIds: string[];
  instanceProfileArn?: string;
  metadataOptions: RunInstancesCommandInput['MetadataOptions'];
  tags: Tag[];
  userDataBytes: number;
}

/** Reads the launch parameters of an instance the project launched (moto, directly). */
export async function launchTemplateOf(stack: ScaleStack, ec2InstanceId: string): Promise<LaunchTemplate> {
  const out = await stack.aws.ec2.send(new DescribeInstancesCommand({ InstanceIds: [ec2InstanceId] }));
  const i = out.Reservations?.[0]?.Instances?.[0];
  if (!i?.ImageId || !i.InstanceType) throw new Error(`cannot read the launch parameters of ${ec2InstanceId}`);
  const attr = await stack.aws.ec2.send(new DescribeInstanceAttributeCommand({ InstanceId: ec2InstanceId, Attribute: 'userData' }));
  const userData = attr.UserData?.Value ? Buffer.from(attr.UserData.Value, 'base64') : Buffer.alloc(0);
  return {
    imageId: i.ImageId,
    instanceType: i.InstanceType,
    subnetIds: stack.subnetIds,
    securityGroupIds: (i.SecurityGroups ?? []).map((g) => g.GroupId ?? '').filter(Boolean),
    instanceProfileArn: i.IamInstanceProfile?.Arn,
    metadataOptions: { HttpTokens: i.MetadataOptions?.HttpTokens ?? 'required', HttpEndpoint: i.MetadataOptions?.HttpEndpoint ?? 'enabled' },
    tags: i.Tags ?? [],
    userDataBytes: userData.length,
  };
}

/** The template's tags with `nstance:` keys renamed and the per-instance values made unique, sizes kept. */
function floorTags(template: LaunchTemplate, shardValue: string, n: number): Tag[] {
  return template.tags.map((t) => {
    const key = (t.Key ?? '').replace(/^nstance:/, FLOOR_TAG_PREFIX);
    if (key === `${FLOOR_TAG_PREFIX}shard`) return { Key: key, Value: shardValue };
    if (key === `${FLOOR_TAG_PREFIX}instance-id` || key === 'Name') return { Key: key, Value: `flr-${String(n).padStart(12, '0')}` };
    return { Key: key, Value: t.Value };
  });
}

/** A script of exactly `bytes` bytes (at least a newline). */
export function sameSizeUserData(bytes: number): string {
  const body = `#!/bin/bash\n# ${'x'.repeat(Math.max(0, bytes))}`;
  return `${body.slice(0, Math.max(0, bytes - 1))}\n`;
}

export interface FloorResult {
  size: number;
  concurrency: number;
  /** Launch start → the last RunInstances answered. */
  allLaunchedMs: number;
  /** Launch start → EC2 holds all N (the proxy's ledger: the answer to the launch that made N), running on moto. */
  allRunningMs: number;
  /** One describe of EC2 after the floor's figures were in: it shows all N running. */
  confirmed: Confirmation;
  /** RequestLimitExceeded answers the caller saw after the SDK's retries (it then retried itself). */
  throttlesSeenByCaller: number;
  calls: CensusSnapshot;
  samples: Sample[];
}

export async function runFloor(stack: ScaleStack, template: LaunchTemplate, size: number): Promise<FloorResult> {
  const concurrency = stack.options.floorConcurrency;
  const shardValue = `floor-${stack.shard}-${size}`;
  // Through the fault proxy, like the worker; the SDK's default (standard) retries, like any script.
  const ec2 = new EC2Client({ region: stack.env.region, endpoint: stack.proxy.url });
  const bucket = new TokenBucket(EC2_BUCKETS.runInstances);
  const userData = Buffer.from(sameSizeUserData(template.userDataBytes)).toString('base64');
  stack.proxy.limits?.refillAll();
  const before = stack.proxy.census.snapshot();
  const startedAt = Date.now();
  // Only what the floor launches counts: the ledger from here on.
  const held = new LedgerHeld(stack.proxy.instanceEvents, stack.proxy.instanceEvents.length);
  const watch = new PhaseWatch(stack, { tag: { key: `${FLOOR_TAG_PREFIX}shard`, value: shardValue }, held: () => held.now(), startedAt, label: `floor ${size}` }).start();
  let next = 0;
  let throttles = 0;
  const launchOne = async (n: number) => {
    const tags = floorTags(template, shardValue, n);
    const input: RunInstancesCommandInput = {
      ImageId: template.imageId,
      InstanceType: template.instanceType as RunInstancesCommandInput['InstanceType'],
      SubnetId: template.subnetIds[n % template.subnetIds.length],
      SecurityGroupIds: template.securityGroupIds,
      ...(template.instanceProfileArn ? { IamInstanceProfile: { Arn: template.instanceProfileArn } } : {}),
      MetadataOptions: template.metadataOptions,
      MinCount: 1,
      MaxCount: 1,
      ClientToken: `${shardValue}-${n}`,
      UserData: userData,
      TagSpecifications: [
        { ResourceType: 'instance', Tags: tags },
        { ResourceType: 'volume', Tags: tags },
      ],
    };
    for (let attempt = 1; ; attempt++) {
      await bucket.take();
      try {
        await ec2.send(new RunInstancesCommand(input));
        return;
      } catch (err) {
        if ((err as Error).name !== 'RequestLimitExceeded' || attempt >= 20) throw err;
        throttles++;
        await new Promise((r) => setTimeout(r, Math.min(10_000, 250 * 2 ** attempt)));
      }
    }
  };
  try {
    await Promise.all(
      Array.from({ length: Math.min(concurrency, size) }, async () => {
        while (next < size) await launchOne(next++);
      }),
    );
    const allLaunchedMs = Date.now() - startedAt;
    const heldAt = heldCurve(stack.proxy.instanceEvents, startedAt).reachedAt[size - 1];
    if (heldAt === undefined) throw new Error(`the floor's ${size} launches were answered, but the proxy's ledger holds ${held.now().size} of them`);
    const allRunningMs = heldAt - startedAt;
    const calls = censusDiff(stack.proxy.census.snapshot(), before);
    await watch.stop();
    const confirmed = await confirmRunning(watch, size, 'the floor');
    const ids = [...held.now()];
    // Cleared straight at moto: the floor's clean-up is not part of what either side is timed on.
    for (let i = 0; i < ids.length; i += 500) await stack.aws.ec2.send(new TerminateInstancesCommand({ InstanceIds: ids.slice(i, i + 500) }));
    stack.held.forget(ids);
    return { size, concurrency, allLaunchedMs, allRunningMs, confirmed, throttlesSeenByCaller: throttles, calls, samples: thin(watch.samples) };
  } finally {
    await watch.stop();
    ec2.destroy();
  }
}
