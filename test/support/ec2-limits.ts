/**
 * EC2's own rules that moto lacks, for the HTTP fault proxy:
 *
 * - the account's token buckets (EC2 API throttling): a call finds its bucket empty and
 *   is answered RequestLimitExceeded (HTTP 503), as EC2 answers it. RunInstances and
 *   TerminateInstances are counted per instance (their resource buckets), every other
 *   call as one request;
 * - RunInstances ClientToken idempotency: a launch that succeeded binds its token; the
 *   same token with the same parameters gets that launch's answer again (no new
 *   instance), with other parameters IdempotentParameterMismatch. The rules are the SDK
 *   fault layer's (faults.ts emulateClientTokens), on the wire.
 */
import { createHash } from 'node:crypto';

export type Ec2BucketName = 'runInstances' | 'describe' | 'terminate' | 'mutate';

export interface BucketSpec {
  capacity: number;
  refillPerSecond: number;
}

/** EC2's documented defaults (per account and region). */
export const EC2_BUCKETS: Readonly<Record<Ec2BucketName, BucketSpec>> = {
  runInstances: { capacity: 1000, refillPerSecond: 2 },
  describe: { capacity: 100, refillPerSecond: 20 },
  terminate: { capacity: 1000, refillPerSecond: 20 },
  mutate: { capacity: 200, refillPerSecond: 10 },
};

/** A token bucket that never waits: it says whether the tokens were there. */
export class Bucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly spec: BucketSpec,
    private readonly now: () => number,
  ) {
    this.tokens = spec.capacity;
    this.last = now();
  }

  tryTake(cost: number): boolean {
    const t = this.now();
    this.tokens = Math.min(this.spec.capacity, this.tokens + ((t - this.last) / 1000) * this.spec.refillPerSecond);
    this.last = t;
    if (this.tokens < cost) return false;
    this.tokens -= cost;
    return true;
  }

  /** Tokens there now (refilled to this moment). */
  available(): number {
    this.tryTake(0);
    return this.tokens;
  }

  refill(): void {
    this.tokens = this.spec.capacity;
    this.last = this.now();
  }
}

/** Which bucket an EC2 action draws from: EC2 counts Describe/Get/List/Search as non-mutating. */
export function ec2BucketOf(action: string): Ec2BucketName {
  if (action === 'RunInstances') return 'runInstances';
  if (action === 'TerminateInstances') return 'terminate';
  if (/^(Describe|Get|List|Search)/.test(action)) return 'describe';
  return 'mutate';
}

/** Tokens a call costs: instances for RunInstances (MaxCount) and TerminateInstances (ids), else 1. */
export function ec2CostOf(action: string, form: URLSearchParams): number {
  if (action === 'RunInstances') return Math.max(1, Number(form.get('MaxCount') ?? 1) || 1);
  if (action === 'TerminateInstances') return Math.max(1, [...form.keys()].filter((k) => /^InstanceId\.\d+$/.test(k)).length);
  return 1;
}

export class Ec2RequestLimits {
  private readonly buckets: Record<Ec2BucketName, Bucket>;

  constructor(specs: Partial<Record<Ec2BucketName, BucketSpec>> = {}, now: () => number = Date.now) {
    const make = (name: Ec2BucketName) => new Bucket(specs[name] ?? EC2_BUCKETS[name], now);
    this.buckets = { runInstances: make('runInstances'), describe: make('describe'), terminate: make('terminate'), mutate: make('mutate') };
  }

  /** Takes what the call costs from its bucket; false means EC2 would answer RequestLimitExceeded. */
  admit(action: string, form: URLSearchParams): { admitted: boolean; bucket: Ec2BucketName; cost: number } {
    const bucket = ec2BucketOf(action);
    const cost = ec2CostOf(action, form);
    return { admitted: this.buckets[bucket].tryTake(cost), bucket, cost };
  }

  available(bucket: Ec2BucketName): number {
    return this.buckets[bucket].available();
  }

  /** Every bucket full again, as an account that sat idle long enough (between benchmark phases). */
  refillAll(): void {
    for (const b of Object.values(this.buckets)) b.refill();
  }
}

/** A RunInstances request's parameters minus its ClientToken, order-independent, as a digest. */
export function runParameters(form: URLSearchParams): string {
  const pairs = [...form.entries()].filter(([k]) => k !== 'ClientToken').map(([k, v]) => `${k}=${v}`).sort();
  return createHash('sha256').update(pairs.join('&')).digest('hex');
}

export type TokenOutcome<A> = { outcome: 'launched'; answer: A } | { outcome: 'replayed'; answer: A } | { outcome: 'mismatch' };

/**
 * ClientToken bindings. `run` launches only when the token is unbound; a request with
 * a token whose launch is still in flight waits for it (EC2 never launches twice for
 * one token), then is answered from the binding.
 */
export class ClientTokens<A> {
  private readonly bound = new Map<string, { parameters: string; answer: A }>();
  private readonly inFlight = new Map<string, Promise<unknown>>();

  constructor(private readonly succeeded: (answer: A) => boolean) {}

  async run(token: string, parameters: string, launch: () => Promise<A>): Promise<TokenOutcome<A>> {
    for (;;) {
      const earlier = this.bound.get(token);
      if (earlier) return earlier.parameters === parameters ? { outcome: 'replayed', answer: earlier.answer } : { outcome: 'mismatch' };
      const pending = this.inFlight.get(token);
      if (!pending) break;
      await pending.catch(() => undefined);
    }
    const launching = launch();
    this.inFlight.set(token, launching);
    try {
      const answer = await launching;
      // Only a launch that succeeded binds its token, as at AWS: a refused request may be retried with other parameters.
      if (this.succeeded(answer)) this.bound.set(token, { parameters, answer });
      return { outcome: 'launched', answer };
    } finally {
      this.inFlight.delete(token);
    }
  }

  get size(): number {
    return this.bound.size;
  }
}
