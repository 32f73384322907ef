import { DescribeSubnetsCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { ApplicationFailure } from '@temporalio/common';
import { outsideActivity, sharedRequest } from '../aws/cancellation';
import { systemClock, type Clock } from '../aws/clock';
import type { RateLimiter } from '../aws/token-bucket';

/** A subnet needs headroom: AWS reserves 5 addresses and other launches race us for the rest. */
export const MIN_FREE_ADDRESSES = 10;

/**
 * How long a DescribeSubnets answer stands. Short: other workers and other tools launch into the same
 * subnets, and shorter than the instance workflow's first shortage backoff (5 s), so a pool found
 * exhausted is asked again after that wait.
 */
export const SUBNET_CACHE_TTL_MS = 3_000;

export interface SubnetDeps {
  ec2: Pick<EC2Client, 'send'>;
  describeLimit: RateLimiter;
  /** The worker's cache of free addresses; without one every selection asks EC2. */
  addresses?: SubnetAddressCache;
}

interface Entry {
  free: number;
  /** When the DescribeSubnets that gave `free` was sent. */
  askedAt: number;
  /** A launch was refused for addresses here (InsufficientFreeAddressesInSubnet) at this time. */
  fullAt?: number;
}

/**
 * Free addresses per subnet, as one worker knows them: one DescribeSubnets per pool every few seconds
 * (concurrent selections share the call in flight), counted down locally by every selection made
 * meanwhile, and set to zero when a launch is refused for addresses. Selections never wait for a
 * launch's outcome, so hundreds of concurrent launches spread over the pool by the count alone.
 */
export class SubnetAddressCache {
  private readonly entries = new Map<string, Entry>();
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly clock: Clock;
  /** DescribeSubnets calls made (for tests and benchmarks). */
  describes = 0;

  constructor(
    private readonly deps: Omit<SubnetDeps, 'addresses'>,
    private readonly ttlMs = SUBNET_CACHE_TTL_MS,
    clock?: Clock,
  ) {
    this.clock = clock ?? systemClock;
  }

  /** Makes sure the pool's counts are fresh, asking EC2 when they are stale. */
  async ready(pool: string, subnetIds: string[]): Promise<void> {
    const now = this.clock.now();
    if (subnetIds.some((id) => !this.fresh(id, now))) await this.refresh(pool, subnetIds);
  }

  /**
   * Free addresses of the subnet as counted now (undefined: EC2 does not show it). Read it right after
   * `ready` and take in the same synchronous step: a count read across an await is someone else's too.
   */
  free(subnetId: string): number | undefined {
    return this.entries.get(subnetId)?.free;
  }

  /** One address of `subnetId` is spoken for (a launch was sent there). */
  take(subnetId: string): void {
    const entry = this.entries.get(subnetId);
    if (entry) entry.free = Math.max(0, entry.free - 1);
  }

  /** A launch was refused for addresses: no more selections here until EC2 is asked again. */
  markFull(subnetId: string): void {
    const now = this.clock.now();
    const entry = this.entries.get(subnetId) ?? { free: 0, askedAt: now };
    this.entries.set(subnetId, { ...entry, free: 0, fullAt: now });
  }

  private fresh(subnetId: string, now: number): boolean {
    const entry = this.entries.get(subnetId);
    return entry !== undefined && now - entry.askedAt < this.ttlMs;
  }

  /** One DescribeSubnets per pool at a time: concurrent callers share the call in flight. */
  private refresh(pool: string, subnetIds: string[]): Promise<void> {
    const key = [...subnetIds].sort().join(',');
    const running = this.inFlight.get(key);
    if (running) return running;
    // Shared by every caller: no one caller's cancellation may abort it.
    const call = outsideActivity(() => this.describe(pool, subnetIds)).finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, call);
    return call;
  }

  private async describe(pool: string, subnetIds: string[]): Promise<void> {
    await this.deps.describeLimit.take();
    const askedAt = this.clock.now();
    this.describes++;
    const out = await sharedRequest(`DescribeSubnets for subnet pool "${pool}"`, (options) => this.deps.ec2.send(new DescribeSubnetsCommand({ SubnetIds: subnetIds }), options));
    const shown = new Map((out.Subnets ?? []).map((s) => [s.SubnetId, s.AvailableIpAddressCount ?? 0]));
    for (const id of subnetIds) {
      const before = this.entries.get(id);
      // A refusal that came after this call was sent is newer than its answer.
      const stillFull = before?.fullAt !== undefined && before.fullAt >= askedAt;
      const free = stillFull ? 0 : shown.get(id);
      if (free === undefined) this.entries.delete(id);
      else this.entries.set(id, { free, askedAt, fullAt: stillFull ? before?.fullAt : undefined });
    }
  }
}

/**
 * The first subnet of the pool, in the pool's order, with more than
 * MIN_FREE_ADDRESSES free, counting it down by one. `exclude` lets a caller skip
 * subnets a launch just found full.
 */
export async function selectSubnet(deps: SubnetDeps, pool: string, subnetIds: string[], exclude: string[] = []): Promise<string> {
  const addresses = deps.addresses ?? new SubnetAddressCache(deps, 0);
  await addresses.ready(pool, subnetIds);
  // Chosen and counted down in one synchronous step, so concurrent selections never share an address.
  const chosen = subnetIds.find((id) => !exclude.includes(id) && (addresses.free(id) ?? 0) > MIN_FREE_ADDRESSES);
  if (chosen) {
    addresses.take(chosen);
    return chosen;
  }
  const summary = subnetIds
    .map((id) => (exclude.includes(id) ? `${id}: full at launch (InsufficientFreeAddressesInSubnet)` : `${id}: ${addresses.free(id) ?? 'missing'} free`))
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
