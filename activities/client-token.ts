import { createHash } from 'node:crypto';
import type { LaunchAttempt } from './deps';

/**
 * The RunInstances ClientToken of one launch in one subnet. EC2 answers a retry that reuses a token with
 * the first launch's instance only if every other parameter is identical, so the token must change exactly
 * when the parameters may: with the subnet (a SubnetFull retry moves on to the next one) and with the
 * scheduled launch, whose time fixes the nonce's iat/exp in UserData (see LaunchAttempt).
 *
 * Still no duplicates: all attempts of one scheduled launch activity (the crash-and-retry window the token
 * exists for) share the token. The workflow schedules a new launch, with a new token, only after EC2
 * rejected the previous one (InsufficientFreeAddressesInSubnet, InsufficientInstanceCapacity), which launches
 * nothing; and every retried attempt first looks the instance up by its nstance:instance-id tag and adopts it.
 * A SHA-256 hex digest is 64 characters, RunInstances' limit.
 */
export function clientTokenFor(launch: LaunchAttempt, subnetId: string, fallbackType?: string): string {
  // A fallback type changes the parameters (InstanceType, and userdata's {{ .Instance.Type }}): its own token.
  // The preferred type keeps the token it always had, so a launch in flight across an upgrade still matches.
  const type = fallbackType === undefined ? '' : `\0${fallbackType}`;
  return createHash('sha256').update(`${launch.workflowId}\0${subnetId}\0${launch.issuedAtMs}${type}`).digest('hex');
}
