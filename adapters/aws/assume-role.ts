/**
 * Cross-account credentials (`shard.infra.assume_role`): every AWS client of the worker and the agent API
 * signs with credentials from sts:AssumeRole on the shard's role, refreshed before they expire. One
 * provider serves all of a process's clients, so a refresh is one AssumeRole, not one per client.
 */
import { fromTemporaryCredentials } from '@aws-sdk/credential-providers';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider, Pluggable } from '@smithy/types';
import { ApplicationFailure } from '@temporalio/common';
import { parseDuration } from '../../common/duration';
import { awsErrorCode } from './errors';

export interface AssumeRoleSettings {
  roleArn: string;
  externalId?: string;
  sessionName: string;
  durationSeconds: number;
}

/** The config's `assume_role` as STS parameters (session name defaults to `nstance-<shard>`). */
export function assumeRoleSettings(config: { role_arn: string; external_id?: string; session_name?: string; duration: string }, shard: string): AssumeRoleSettings {
  return {
    roleArn: config.role_arn,
    externalId: config.external_id,
    sessionName: config.session_name ?? `nstance-${shard}`.slice(0, 64),
    durationSeconds: Math.round(parseDuration(config.duration) / 1000),
  };
}

/** Refresh this long before the credentials expire: the SDK's own window, so a request never signs with expiring ones. */
export const REFRESH_BEFORE_MS = 5 * 60_000;

/**
 * A provider that caches what `fetch` returns until REFRESH_BEFORE_MS before its expiration; concurrent
 * callers share one fetch in flight. A failed fetch is not cached: the next call tries again.
 */
export function refreshingCredentials(fetch: () => Promise<AwsCredentialIdentity>, now: () => number = Date.now): AwsCredentialIdentityProvider & { fetches: () => number } {
  let current: AwsCredentialIdentity | undefined;
  let inFlight: Promise<AwsCredentialIdentity> | undefined;
  let fetches = 0;
  const fresh = (c: AwsCredentialIdentity | undefined) => c !== undefined && (c.expiration === undefined || c.expiration.getTime() - now() > REFRESH_BEFORE_MS);
  const provider = async (): Promise<AwsCredentialIdentity> => {
    if (fresh(current)) return current as AwsCredentialIdentity;
    inFlight ??= (async () => {
      fetches++;
      try {
        current = await fetch();
        return current;
      } finally {
        inFlight = undefined;
      }
    })();
    return inFlight;
  };
  return Object.assign(provider, { fetches: () => fetches });
}

/** Says which setting to check: an AccessDenied from AssumeRole is nearly always the trust policy or the ExternalId. */
export function assumeRoleError(err: unknown, settings: AssumeRoleSettings): Error {
  const code = awsErrorCode(err) ?? (err as Error).name;
  const hint =
    code === 'AccessDenied'
      ? settings.externalId
        ? `; check shard.infra.assume_role.external_id ("${settings.externalId}") against the sts:ExternalId condition of the role's trust policy, and that it trusts this identity`
        : "; the role's trust policy does not let this identity assume it (does it require an sts:ExternalId? set shard.infra.assume_role.external_id)"
      : '';
  // Retrying cannot fix a refusal; other failures (throttling, network) may pass.
  return ApplicationFailure.create({
    type: 'AssumeRoleFailed',
    nonRetryable: code === 'AccessDenied' || code === 'InvalidClientTokenId' || code === 'ValidationError',
    message: `sts:AssumeRole ${settings.roleArn} failed: ${code}: ${(err as Error).message}${hint}`,
    cause: err instanceof Error ? err : undefined,
  });
}

export interface AssumeRoleClientOptions {
  region: string;
  endpoint?: string;
  /** The operator's own credentials (default: the SDK's default chain). */
  masterCredentials?: AwsCredentialIdentity | AwsCredentialIdentityProvider;
  /** SDK plugins for the STS client (tests add their fault layer). */
  stsPlugins?: Pluggable<object, object>[];
  now?: () => number;
}

/** Credentials of the shard's role, shared by every client that is given them, refreshed before expiry. */
export function assumeRoleCredentials(settings: AssumeRoleSettings, options: AssumeRoleClientOptions): AwsCredentialIdentityProvider & { fetches: () => number } {
  const assume = fromTemporaryCredentials({
    params: {
      RoleArn: settings.roleArn,
      RoleSessionName: settings.sessionName,
      DurationSeconds: settings.durationSeconds,
      ...(settings.externalId ? { ExternalId: settings.externalId } : {}),
    },
    masterCredentials: options.masterCredentials,
    clientConfig: { region: options.region, ...(options.endpoint ? { endpoint: options.endpoint } : {}) },
    clientPlugins: options.stsPlugins,
  });
  return refreshingCredentials(async () => {
    try {
      return await assume();
    } catch (err) {
      throw assumeRoleError(err, settings);
    }
  }, options.now);
}
