import type { Expiry } from '../../common/types';

export interface ExpirySpec {
  eligibleAgeMs: number;
  forcedAgeMs: number;
}

/** The next age mark an instance has yet to pass, measured from when it entered service. */
export function nextExpiry(spec: ExpirySpec | undefined, since: number, reached: Expiry | undefined): { expiry: Expiry; at: number } | undefined {
  if (!spec) return undefined;
  if (reached === undefined) return { expiry: 'eligible', at: since + spec.eligibleAgeMs };
  if (reached === 'eligible') return { expiry: 'forced', at: since + spec.forcedAgeMs };
  return undefined;
}
