/**
 * ActivityDeps.issueRegistrationNonce: mints the nonce rendered as {{ .Nonce }}
 * (and hands over the CA certificate, {{ .Server.CACert }}) into userdata inside the launch activity, so it never enters workflow history.
 * Config and PKI come from the worker's in-memory caches: a launch reads nothing from S3 or Secrets Manager.
 */
import { shardSettings } from '../../common/config';
import type { InstanceWorkflowInput } from '../../common/types';
import type { AwsClients } from '../aws/clients';
import type { LaunchAttempt, RegistrationMaterial } from '../../activities/deps';
import { FRESH, ShardConfigCaches } from '../s3/config-cache';
import { ObjectStore } from '../s3/objects';
import { SecretStores } from '../secrets/factory';
import { pkiLocation } from './location';
import { PkiCache } from './cluster-ca';
import { mintLaunchNonce } from './nonce';
import { certificateFingerprint } from './x509';

export interface NonceIssuerDeps {
  aws: AwsClients;
  bucket: string;
  /** Shared with the agent API so one worker initialises the PKI once. */
  pki?: PkiCache;
  /** Shared with the agent API (and the group activities) so one worker reads each config version once. */
  configs?: ShardConfigCaches;
}

export function createNonceIssuer(deps: NonceIssuerDeps): (input: InstanceWorkflowInput, launch: LaunchAttempt) => Promise<RegistrationMaterial> {
  const objects = new ObjectStore({ s3: deps.aws.s3, bucket: deps.bucket });
  const pki = deps.pki ?? new PkiCache({ stores: new SecretStores(deps.aws), objects });
  const configs = deps.configs ?? new ShardConfigCaches(objects);
  return async (input, launch) => {
    const cache = configs.for(input.shard);
    // A cached "no config yet" is not trusted: a launch only happens once a config was applied.
    const stored = (await cache.config()) ?? (await cache.config(FRESH));
    if (!stored) throw new Error(`no config for shard "${input.shard}": cannot mint a registration nonce`);
    const { config } = stored;
    const { clusterId, registrationKey, registrationKid, caCertPem } = await pki.get(pkiLocation(config, deps.bucket));
    // The workflow input's timeout first: it is fixed for this launch (a config edited between two attempts must not
    // change the nonce) and it is the one the workflow's own registration timer uses.
    const ttl = input.lifecycle?.registrationTimeoutMs ?? shardSettings(config).gc.registrationTimeoutMs;
    const { token } = mintLaunchNonce(
      registrationKey,
      { cluster: clusterId, shard: input.shard, tenant: input.tenant, group: input.group, instanceId: input.instanceId, caFingerprint: certificateFingerprint(caCertPem) },
      { workflowId: launch.workflowId, issuedAtMs: launch.issuedAtMs, ttlMs: ttl, kid: registrationKid },
    );
    return { nonce: token, caCertificate: caCertPem };
  };
}
