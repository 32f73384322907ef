/**
 * Instance types EC2 just had no capacity for, per subnet, as one worker knows them. A type refused with
 * InsufficientInstanceCapacity is skipped there for a cool-down, by every launch of the worker, instead of
 * being asked again by each (at 2,000 launches, one refused call per type and subnet per cool-down rather
 * than 2,000). Entries are bounded by types × subnets and dropped once they expire.
 */
import { systemClock, type Clock } from '../aws/clock';

export const CAPACITY_COOLDOWN_MS = 3 * 60_000;

/** The codes that mean "no capacity for this type here": the next type may have some. */
export const TYPE_CAPACITY_SHORTAGES = ['InsufficientInstanceCapacity', 'InsufficientCapacity'];

export class CapacityCooldown {
  private readonly until = new Map<string, number>();
  private readonly clock: Clock;

  constructor(
    readonly cooldownMs = CAPACITY_COOLDOWN_MS,
    clock?: Clock,
  ) {
    this.clock = clock ?? systemClock;
  }

  private static key(instanceType: string, subnetId: string): string {
    return `${instanceType}@${subnetId}`;
  }

  /** EC2 had no `instanceType` capacity in `subnetId` just now. */
  mark(instanceType: string, subnetId: string): void {
    const now = this.clock.now();
    for (const [key, until] of this.until) if (until <= now) this.until.delete(key);
    this.until.set(CapacityCooldown.key(instanceType, subnetId), now + this.cooldownMs);
  }

  cooling(instanceType: string, subnetId: string): boolean {
    const until = this.until.get(CapacityCooldown.key(instanceType, subnetId));
    return until !== undefined && until > this.clock.now();
  }

  /** The types to try in `subnetId`, in order: those not cooling down. */
  available(instanceTypes: readonly string[], subnetId: string): string[] {
    return instanceTypes.filter((t) => !this.cooling(t, subnetId));
  }

  get size(): number {
    return this.until.size;
  }
}
