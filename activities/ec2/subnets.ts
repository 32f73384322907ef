import { DescribeSubnetsCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { ApplicationFailure } from '@temporalio/common';
import { withAwsErrors } from '../aws/errors';
import type { TokenBucket } from '../aws/token-bucket';

/** A subnet needs headroom: AWS reserves 5 addresses and other launches race us for the rest. */
export const MIN_FREE_ADDRESSES = 10;

export interface SubnetDeps {
  ec2: EC2Client;
  describeLimit: TokenBucket;
}

/**
 * The first subnet of the pool, in the pool's order, with more than
 * MIN_FREE_ADDRESSES free. `exclude` lets a caller skip subnets a launch just
 * found full.
 */
export async function selectSubnet(
  deps: SubnetDeps,
  pool: string,
  subnetIds: string[],
  exclude: string[] = [],
): Promise<string> {
  await deps.describeLimit.take();
  const out = await withAwsErrors(`DescribeSubnets for subnet pool "${pool}"`, () =>
    deps.ec2.send(new DescribeSubnetsCommand({ SubnetIds: subnetIds })),
  );
  const free = new Map((out.Subnets ?? []).map((s) => [s.SubnetId, s.AvailableIpAddressCount ?? 0]));
  const chosen = subnetIds.find((id) => !exclude.includes(id) && (free.get(id) ?? 0) > MIN_FREE_ADDRESSES);
  if (chosen) return chosen;
  const summary = subnetIds
    .map((id) => (exclude.includes(id) ? `${id}: full at launch (InsufficientFreeAddressesInSubnet)` : `${id}: ${free.get(id) ?? 'missing'} free`))
    .join(', ');
  // Non-retryable here: every retry of this activity would see the same pool. Addresses come back only as
  // instances terminate, so the workflow waits with a long, durable backoff and reports why to the group.
  throw ApplicationFailure.create({
    type: 'SubnetPoolExhausted',
    nonRetryable: true,
    message: `subnet pool "${pool}" has no subnet left with more than ${MIN_FREE_ADDRESSES} free addresses (${summary})`,
    details: [pool],
  });
}
