import { DescribeInstancesCommand, type EC2Client, type Instance } from '@aws-sdk/client-ec2';
import { TAG } from '../../common/names';
import { withAwsErrors } from '../../adapters/aws/errors';
import type { Ec2RateLimits } from '../../adapters/aws/token-bucket';

/** EC2's largest DescribeInstances page (it accepts 5 to 1000). */
export const GC_DESCRIBE_PAGE_SIZE = 1000;

/** What the collector needs of a tagged instance; kept small, since a shard lists thousands. */
export interface TaggedInstance {
  ec2InstanceId: string;
  /** Its nstance:instance-id tag, if it has one. */
  instanceId?: string;
  launchedAt?: Date;
}

function tagged(instance: Instance): TaggedInstance[] {
  if (!instance.InstanceId) return [];
  return [{ ec2InstanceId: instance.InstanceId, instanceId: instance.Tags?.find((t) => t.Key === TAG.instanceId)?.Value, launchedAt: instance.LaunchTime }];
}

export interface TaggedListing {
  ec2: EC2Client;
  limits: Ec2RateLimits;
  clusterId: string;
  shard: string;
  pageSize: number;
  /** Told the pages read and the instances they held so far, after each page. */
  onPage: (pages: number, instances: number) => void;
}

/**
 * Every live instance tagged for the shard, all pages. The listing is finished before anything is
 * terminated: terminating changes the filtered result set that the next page's token points into.
 */
export async function taggedInstances(listing: TaggedListing): Promise<TaggedInstance[]> {
  const found: TaggedInstance[] = [];
  let token: string | undefined;
  let pages = 0;
  do {
    // Each page is a request of its own against EC2's Describe bucket.
    await listing.limits.describe.take();
    const out = await withAwsErrors('DescribeInstances for garbage collection', () =>
      listing.ec2.send(
        new DescribeInstancesCommand({
          Filters: [
            { Name: `tag:${TAG.clusterId}`, Values: [listing.clusterId] },
            { Name: `tag:${TAG.shard}`, Values: [listing.shard] },
            { Name: `tag:${TAG.managed}`, Values: ['true'] },
            { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] },
          ],
          MaxResults: listing.pageSize,
          NextToken: token,
        }),
      ),
    );
    found.push(...(out.Reservations ?? []).flatMap((r) => (r.Instances ?? []).flatMap(tagged)));
    token = out.NextToken || undefined;
    pages += 1;
    listing.onPage(pages, found.length);
  } while (token);
  return found;
}
