import type { EC2Client, Instance } from '@aws-sdk/client-ec2';
import type { Clock } from '../aws/clock';
import { PollingWatch, type WaitOptions } from '../aws/polling-watch';
import type { RateLimiter } from '../aws/token-bucket';
import { InstanceDescribeBatcher, type DescribeBatcherOptions } from './describe-batcher';

export interface InstanceObserverOptions {
  ec2: Pick<EC2Client, 'send'>;
  describeLimit: RateLimiter;
  /** How often the instances being waited on are looked at (all of them in one batched call). */
  pollMs: number;
  clock?: Clock;
  /** Window and sizes of the batches (defaults suit EC2; tests make them small). */
  batching?: Omit<DescribeBatcherOptions, 'ec2' | 'describeLimit' | 'clock'>;
}

/**
 * A worker's one view of EC2's instances: every look-up of the process (the group's periodic look,
 * every instance waiting to run or to be gone) goes through one batcher, and every wait is served by
 * one polling loop that makes one batched look per interval for all waiters together.
 */
export class InstanceObserver {
  readonly batcher: InstanceDescribeBatcher;
  private readonly watch: PollingWatch<string, Instance>;

  constructor(options: InstanceObserverOptions) {
    this.batcher = new InstanceDescribeBatcher({ ...options.batching, ec2: options.ec2, describeLimit: options.describeLimit, clock: options.clock });
    this.watch = new PollingWatch<string, Instance>({ look: (ids) => this.batcher.describe(ids), pollMs: options.pollMs, clock: options.clock });
  }

  /** What EC2 shows of these instances now (an id it does not show is absent: maybe not visible yet). */
  observe(ec2InstanceIds: readonly string[]): Promise<ReadonlyMap<string, Instance>> {
    return this.batcher.describe(ec2InstanceIds);
  }

  /** Waits until `decide` settles on what EC2 shows of the instance (undefined: not shown this time). */
  waitFor<T>(ec2InstanceId: string, decide: (seen: Instance | undefined) => T | undefined, options?: WaitOptions<Instance>): Promise<T> {
    return this.watch.wait(ec2InstanceId, decide, options);
  }

  /** Instances being waited on right now. */
  get waiting(): number {
    return this.watch.waiting;
  }
}
