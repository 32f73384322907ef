/**
 * The IAM proof for the leader ENI's moves made by worker processes (outside the fault layer, seen by the EC2
 * fault proxy): every attach and detach, with the resource tags EC2 really holds for the ENI and the worker
 * instance (read with DescribeTags at the end, as IAM reads them at the call), against the generated policy.
 * A worker instance launched without the cluster tag is refused here, as AWS would refuse its attach.
 */
import { DescribeTagsCommand, type EC2Client } from '@aws-sdk/client-ec2';
import type { NstanceConfig } from '../../common/config';
import { workerPolicy } from '../../common/iam/policy';
import type { ProxyCall } from './fault-proxy';
import { MOTO_ACCOUNT } from './faults';
import { authRequestsOf } from './iam-calls';
import { describeVerdict, evaluate } from './iam-proof';

/** Tags of each resource, as EC2 answers DescribeTags (paged), for the ids given. */
export async function tagsFromEc2(ec2: EC2Client, resourceIds: string[]): Promise<Map<string, Record<string, string>>> {
  const tags = new Map<string, Record<string, string>>(resourceIds.map((id) => [id, {}]));
  if (resourceIds.length === 0) return tags;
  let token: string | undefined;
  do {
    const page = await ec2.send(new DescribeTagsCommand({ Filters: [{ Name: 'resource-id', Values: resourceIds }], NextToken: token }));
    for (const t of page.Tags ?? []) {
      if (!t.ResourceId || !t.Key) continue;
      tags.set(t.ResourceId, { ...tags.get(t.ResourceId), [t.Key]: t.Value ?? '' });
    }
    token = page.NextToken;
  } while (token);
  return tags;
}

/** Proves every recorded ENI move allowed by `config`'s policy; throws naming each refused request. Returns how many were evaluated. */
export async function proveEniMoves(ec2: EC2Client, calls: ProxyCall[], config: NstanceConfig, region: string): Promise<number> {
  const ids = [...new Set(calls.flatMap((c) => [c.interfaceId, c.instanceId]).filter((id): id is string => Boolean(id)))];
  const tags = await tagsFromEc2(ec2, ids);
  const scope = { region, account: MOTO_ACCOUNT };
  const requests = calls.flatMap((c) => {
    const facts = { tagsOf: (id: string) => tags.get(id), attachment: () => ({ interfaceId: c.interfaceId, instanceId: c.instanceId }) };
    const input = c.action === 'AttachNetworkInterface' ? { NetworkInterfaceId: c.interfaceId, InstanceId: c.instanceId } : { AttachmentId: 'recorded' };
    return authRequestsOf(c.action, input, scope, facts) ?? [];
  });
  const verdicts = await evaluate(requests, [workerPolicy(config, { account: MOTO_ACCOUNT })]);
  const refused = verdicts.filter((v) => v.result !== 'Allowed');
  if (refused.length > 0) throw new Error(`IAM proof: leader ENI moves not allowed by the generated policy:\n${refused.map(describeVerdict).join('\n')}`);
  return verdicts.length;
}
