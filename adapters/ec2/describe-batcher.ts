import { DescribeInstancesCommand, type EC2Client, type Instance } from '@aws-sdk/client-ec2';
import { outsideActivity, sharedRequest } from '../aws/cancellation';
import { systemClock, type Clock, type ClockTimer } from '../aws/clock';
import type { RateLimiter } from '../aws/token-bucket';

/**
 * Collects the instance-state look-ups of every activity in the process and answers them with one
 * paginated DescribeInstances, in the spirit of Karpenter's batcher: a request opens a window that
 * closes when no new request came for `idleMs`, or `maxWindowMs` after it opened, or once `maxBatch`
 * instances are waiting, whichever is first.
 *
 * Instances are asked for with an instance-id filter rather than InstanceIds: an id EC2 does not know
 * yet (eventual consistency, right after RunInstances) is then simply absent from the answer, instead
 * of failing the whole call with InvalidInstanceID.NotFound for every caller in the batch.
 */
export interface DescribeBatcherOptions {
  ec2: Pick<EC2Client, 'send'>;
  describeLimit: RateLimiter;
  idleMs?: number;
  maxWindowMs?: number;
  /** Instances that close the window at once. */
  maxBatch?: number;
  /** Values per instance-id filter: EC2 accepts at most 200 values per filter. */
  chunkSize?: number;
  /** MaxResults per page (EC2 accepts 5 to 1000 when filtering). */
  pageSize?: number;
  /** Chunks described at the same time. */
  concurrency?: number;
  /** A call that takes longer is given up (default SHARED_REQUEST_TIMEOUT_MS): one hung request must not stall every waiter. */
  requestTimeoutMs?: number;
  clock?: Clock;
}

export const EC2_FILTER_VALUES_MAX = 200;
export const EC2_DESCRIBE_PAGE_MAX = 1000;

interface Pending {
  resolve: (instances: ReadonlyMap<string, Instance>) => void;
  reject: (reason: unknown) => void;
}

export class InstanceDescribeBatcher {
  private pending: Pending[] = [];
  private pendingIds = new Set<string>();
  private windowOpenedAt: number | undefined;
  private timer: ClockTimer | undefined;
  private readonly clock: Clock;
  private readonly idleMs: number;
  private readonly maxWindowMs: number;
  private readonly maxBatch: number;
  private readonly chunkSize: number;
  private readonly pageSize: number;
  private readonly concurrency: number;
  /** What the batcher did (for tests and benchmarks): callers served, batches run, DescribeInstances calls made. */
  readonly stats = { requests: 0, batches: 0, calls: 0 };

  constructor(private readonly options: DescribeBatcherOptions) {
    this.clock = options.clock ?? systemClock;
    this.idleMs = options.idleMs ?? 25;
    this.maxWindowMs = options.maxWindowMs ?? 250;
    this.maxBatch = options.maxBatch ?? EC2_DESCRIBE_PAGE_MAX;
    this.chunkSize = Math.min(options.chunkSize ?? EC2_FILTER_VALUES_MAX, EC2_FILTER_VALUES_MAX);
    this.pageSize = Math.max(5, Math.min(options.pageSize ?? EC2_DESCRIBE_PAGE_MAX, EC2_DESCRIBE_PAGE_MAX));
    this.concurrency = Math.max(1, options.concurrency ?? 4);
  }

  /** The instances EC2 shows among `ids`, by id (an id it does not show is absent), batched with every concurrent caller. */
  describe(ids: readonly string[]): Promise<ReadonlyMap<string, Instance>> {
    this.stats.requests++;
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      for (const id of ids) this.pendingIds.add(id);
      if (this.pendingIds.size >= this.maxBatch) return this.flush();
      const now = this.clock.now();
      this.windowOpenedAt ??= now;
      if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
      const closesIn = Math.max(0, Math.min(this.idleMs, this.windowOpenedAt + this.maxWindowMs - now));
      this.timer = this.clock.setTimeout(() => this.flush(), closesIn);
    });
  }

  private flush(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.windowOpenedAt = undefined;
    const callers = this.pending;
    const ids = [...this.pendingIds];
    this.pending = [];
    this.pendingIds = new Set();
    if (callers.length === 0) return;
    this.stats.batches++;
    // Shared by every caller: no one caller's cancellation may abort it.
    outsideActivity(() => this.describeAll(ids)).then(
      (instances) => callers.forEach((c) => c.resolve(instances)),
      (err: unknown) => callers.forEach((c) => c.reject(err)),
    );
  }

  private async describeAll(ids: string[]): Promise<ReadonlyMap<string, Instance>> {
    const found = new Map<string, Instance>();
    const chunks: string[][] = [];
    for (let i = 0; i < ids.length; i += this.chunkSize) chunks.push(ids.slice(i, i + this.chunkSize));
    let next = 0;
    const worker = async () => {
      while (next < chunks.length) {
        const chunk = chunks[next++];
        for (const instance of await this.describeChunk(chunk, ids.length)) if (instance.InstanceId) found.set(instance.InstanceId, instance);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, chunks.length) }, worker));
    return found;
  }

  private async describeChunk(chunk: string[], total: number): Promise<Instance[]> {
    const instances: Instance[] = [];
    let token: string | undefined;
    do {
      await this.options.describeLimit.take();
      this.stats.calls++;
      const out = await sharedRequest(
        `DescribeInstances (batched: ${total} instances)`,
        (options) =>
          this.options.ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'instance-id', Values: chunk }], MaxResults: this.pageSize, NextToken: token }), options),
        this.options.requestTimeoutMs,
      );
      instances.push(...(out.Reservations ?? []).flatMap((r) => r.Instances ?? []));
      token = out.NextToken || undefined;
    } while (token);
    return instances;
  }
}
