/**
 * The credentials a worker signs with: its own, or, when the shard's config sets
 * `shard.infra.assume_role`, the shard role's (sts:AssumeRole, refreshed before expiry). The config is read
 * once at start with the worker's own credentials (the operator's policy allows that one object); a
 * changed assume_role takes effect when the worker restarts.
 *
 * It fails closed: a config that cannot be read (S3 down, access denied, a bad bucket) or cannot be parsed
 * may set assume_role, so the worker never falls back to its own credentials for it. A read is retried for a
 * while (S3 or IAM may be settling at boot), then the worker stops naming the object and the field.
 */
import { S3Client } from '@aws-sdk/client-s3';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { assumeRoleCredentials, assumeRoleSettings } from '../adapters/aws/assume-role';
import type { AwsClientOptions } from '../adapters/aws/clients';
import { ObjectStore, type StoredObject } from '../adapters/s3/objects';
import { parseConfigText, type NstanceConfig } from '../common/config';
import { s3Keys } from '../common/names';

export interface ShardCredentialsOptions {
  /** How long to keep retrying a config that cannot be read before the worker stops (default 60 s). */
  readWaitMs?: number;
  /** Pause between read attempts (default 2 s). */
  retryEveryMs?: number;
}

const DEFAULT_READ_WAIT_MS = 60_000;
const DEFAULT_RETRY_EVERY_MS = 2_000;

/** Raised when the worker cannot know whether the shard's config sets assume_role; the worker must not start. */
export class ShardConfigUnreadableError extends Error {
  override readonly name = 'ShardConfigUnreadableError';
}

async function readWithRetry(objects: ObjectStore, key: string, location: string, options: ShardCredentialsOptions, log: (line: string) => void): Promise<StoredObject | undefined> {
  const waitMs = options.readWaitMs ?? DEFAULT_READ_WAIT_MS;
  const everyMs = options.retryEveryMs ?? DEFAULT_RETRY_EVERY_MS;
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await objects.read(key);
    } catch (err) {
      const waited = Date.now() - started;
      if (waited + everyMs > waitMs) {
        throw new ShardConfigUnreadableError(
          `nstance worker: cannot read the shard config ${location} at start (${attempt} attempts over ${Math.round(waited / 1000)} s; last: ${(err as Error).message}). ` +
            `It may set shard.infra.assume_role, so the worker will not fall back to its own credentials: check NSTANCE_BUCKET, NSTANCE_SHARD and the worker's s3:GetObject on that object`,
        );
      }
      if (attempt === 1) log(`nstance worker: shard config ${location} not readable yet (${(err as Error).message}); retrying for up to ${Math.round(waitMs / 1000)} s`);
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  }
}

function parsed(found: StoredObject, location: string): NstanceConfig {
  try {
    return parseConfigText(found.text, location);
  } catch (err) {
    // Retrying cannot fix a bad config; without it, whether assume_role is set is unknown.
    throw new ShardConfigUnreadableError(
      `nstance worker: the shard config ${location} is invalid, so whether shard.infra.assume_role is set is unknown; the worker will not start on its own credentials. ${(err as Error).message}`,
    );
  }
}

export async function shardCredentials(
  options: AwsClientOptions,
  bucket: string,
  shard: string,
  log: (line: string) => void,
  readOptions: ShardCredentialsOptions = {},
): Promise<AwsCredentialIdentityProvider | undefined> {
  const s3 = new S3Client({ region: options.region, endpoint: options.endpoint, forcePathStyle: options.endpoint !== undefined, maxAttempts: 1 });
  const key = s3Keys.config(shard);
  const location = `s3://${bucket}/${key}`;
  try {
    const found = await readWithRetry(new ObjectStore({ s3, bucket }), key, location, readOptions, log);
    // No config yet: nothing sets assume_role. One applied later takes effect when the worker restarts.
    if (!found) {
      log(`nstance worker: no shard config at ${location} yet; AWS calls use the worker's own credentials (a shard.infra.assume_role applied later takes effect at restart)`);
      return undefined;
    }
    const config = parsed(found, location);
    const assume = config.shard.infra.assume_role;
    if (!assume) return undefined;
    const settings = assumeRoleSettings(assume, shard);
    // STS of the shard's region: the operator's sts:AssumeRole is bounded to it (common/iam/documents.ts).
    const credentials = assumeRoleCredentials(settings, { region: config.shard.infra.region, endpoint: options.endpoint });
    // Fail at start, with the reason, rather than on every activity.
    await credentials();
    log(`nstance worker: AWS calls use role ${settings.roleArn} (session ${settings.sessionName}, ${settings.durationSeconds} s, refreshed before expiry)`);
    return credentials;
  } finally {
    s3.destroy();
  }
}
