import type { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import type { TargetGroupRef } from '../../common/types';
import { outsideActivity } from '../aws/cancellation';
import type { Clock } from '../aws/clock';
import { PollingWatch, type WaitOptions } from '../aws/polling-watch';
import { targetStates } from './targets';

/** Targets asked about per DescribeTargetHealth call. */
export const TARGETS_PER_CALL = 100;

export interface TargetDrainWatchOptions {
  elbv2: Pick<ElasticLoadBalancingV2Client, 'send'>;
  pollMs: number;
  targetsPerCall?: number;
  clock?: Clock;
}

type TargetKey = string;

const keyOf = (tg: TargetGroupRef, ec2InstanceId: string): TargetKey => JSON.stringify([tg.arn, tg.port, ec2InstanceId]);

/**
 * The worker's draining targets, polled together: every interval, one DescribeTargetHealth per target
 * group asks about exactly the targets that drain there (Targets), not about the whole group, and
 * every drain decides from its own target's answer.
 */
export class TargetDrainWatch {
  private readonly watch: PollingWatch<TargetKey, string>;
  private readonly targetsPerCall: number;

  constructor(private readonly options: TargetDrainWatchOptions) {
    this.targetsPerCall = options.targetsPerCall ?? TARGETS_PER_CALL;
    this.watch = new PollingWatch<TargetKey, string>({ look: (keys) => outsideActivity(() => this.look(keys)), pollMs: options.pollMs, clock: options.clock });
  }

  /** Resolves once the target group no longer lists the instance (any state, draining included). */
  drained(tg: TargetGroupRef, ec2InstanceId: string, options?: WaitOptions<string>): Promise<true> {
    return this.watch.wait(keyOf(tg, ec2InstanceId), (state) => (state === undefined ? true : undefined), options);
  }

  private async look(keys: TargetKey[]): Promise<ReadonlyMap<TargetKey, string>> {
    const byGroup = new Map<string, { tg: TargetGroupRef; ids: string[] }>();
    for (const key of keys) {
      const [arn, port, id] = JSON.parse(key) as [string, number, string];
      const group = byGroup.get(JSON.stringify([arn, port])) ?? { tg: { arn, port }, ids: [] };
      group.ids.push(id);
      byGroup.set(JSON.stringify([arn, port]), group);
    }
    const states = new Map<TargetKey, string>();
    for (const { tg, ids } of byGroup.values()) {
      for (let i = 0; i < ids.length; i += this.targetsPerCall) {
        const seen = await targetStates(this.options.elbv2, tg, ids.slice(i, i + this.targetsPerCall));
        for (const [id, state] of seen) states.set(keyOf(tg, id), state);
      }
    }
    return states;
  }
}
