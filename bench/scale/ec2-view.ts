/**
 * What EC2 (moto, read directly, not through the fault proxy) holds for a tag: instances
 * by state and the ids of those still alive. This is the benchmark's ground truth for
 * "running", independent of what the orchestrator believes.
 */
import { DescribeInstancesCommand, type EC2Client } from '@aws-sdk/client-ec2';

/** States of an instance that still takes a place in the account (and an address in its subnet). */
export const HELD_STATES = ['pending', 'running', 'stopping', 'stopped', 'shutting-down'] as const;

export interface Ec2View {
  /** When the describe was sent (ms since epoch): what it shows held then, or a moment later. */
  at: number;
  /** How long the paginated describe took, ms. */
  tookMs: number;
  byState: Record<string, number>;
  running: number;
  /** Instances in any held state. */
  held: number;
  /** Ids of the held instances. */
  heldIds: Set<string>;
}

export async function ec2View(ec2: EC2Client, tag: { key: string; value: string }): Promise<Ec2View> {
  const at = Date.now();
  const byState: Record<string, number> = {};
  const heldIds = new Set<string>();
  let token: string | undefined;
  do {
    const out = await ec2.send(
      new DescribeInstancesCommand({
        Filters: [
          { Name: `tag:${tag.key}`, Values: [tag.value] },
          { Name: 'instance-state-name', Values: [...HELD_STATES] },
        ],
        MaxResults: 1000,
        NextToken: token,
      }),
    );
    for (const i of (out.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
      const state = i.State?.Name ?? 'unknown';
      byState[state] = (byState[state] ?? 0) + 1;
      if (i.InstanceId) heldIds.add(i.InstanceId);
    }
    token = out.NextToken;
  } while (token);
  return { at, tookMs: Date.now() - at, byState, running: byState.running ?? 0, held: heldIds.size, heldIds };
}
