/**
 * The credentials a worker signs with: its own, or, when the shard's config sets
 * `shard.infra.assume_role`, the shard role's (sts:AssumeRole, refreshed before expiry). The config is read
 * once at start with the worker's own credentials (the operator's policy allows that one object); a
 * changed assume_role takes effect when the worker restarts.
 */
import { S3Client } from '@aws-sdk/client-s3';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { assumeRoleCredentials, assumeRoleSettings } from '../adapters/aws/assume-role';
import type { AwsClientOptions } from '../adapters/aws/clients';
import { ShardConfigStore } from '../adapters/s3/config-store';
import { ObjectStore } from '../adapters/s3/objects';

export async function shardCredentials(options: AwsClientOptions, bucket: string, shard: string, log: (line: string) => void): Promise<AwsCredentialIdentityProvider | undefined> {
  const s3 = new S3Client({ region: options.region, endpoint: options.endpoint, forcePathStyle: options.endpoint !== undefined });
  try {
    let stored;
    try {
      stored = await new ShardConfigStore(new ObjectStore({ s3, bucket }), shard).readConfig();
    } catch (err) {
      // No config to read yet (or not readable): the worker starts on its own credentials, as it always did.
      log(`nstance worker: shard config not read at start (${(err as Error).message}); AWS calls use the worker's own credentials`);
      return undefined;
    }
    const assume = stored?.config.shard.infra.assume_role;
    if (!assume) return undefined;
    const settings = assumeRoleSettings(assume, shard);
    const credentials = assumeRoleCredentials(settings, { region: options.region, endpoint: options.endpoint });
    // Fail at start, with the reason, rather than on every activity.
    await credentials();
    log(`nstance worker: AWS calls use role ${settings.roleArn} (session ${settings.sessionName}, ${settings.durationSeconds} s, refreshed before expiry)`);
    return credentials;
  } finally {
    s3.destroy();
  }
}
