/**
 * ActivityDeps.issueRegistrationNonce: mints the nonce rendered as {{ .Nonce }}
 * (and hands over the CA certificate, {{ .Server.CACert }}) into userdata inside the launch activity, so it never enters workflow history.
 */
import { shardSettings } from '../../common/config';
import type { InstanceWorkflowInput } from '../../common/types';
import type { AwsClients } from '../aws/clients';
import type { RegistrationMaterial } from '../deps';
import { ShardConfigStore } from '../s3/config-store';
import { ObjectStore } from '../s3/objects';
import { SecretStore } from '../secrets/store';
import { PkiCache } from './cluster-ca';
import { mintNonce } from './nonce';
import { certificateFingerprint } from './x509';

export interface NonceIssuerDeps {
  aws: AwsClients;
  bucket: string;
  /** Shared with the agent API so one worker initialises the PKI once. */
  pki?: PkiCache;
  now?: () => number;
}

export function createNonceIssuer(deps: NonceIssuerDeps): (input: InstanceWorkflowInput) => Promise<RegistrationMaterial> {
  const objects = new ObjectStore({ s3: deps.aws.s3, bucket: deps.bucket });
  const pki = deps.pki ?? new PkiCache({ secrets: new SecretStore(deps.aws.secrets), objects });
  return async (input) => {
    const stored = await new ShardConfigStore(objects, input.shard).readConfig();
    if (!stored) throw new Error(`no config for shard "${input.shard}": cannot mint a registration nonce`);
    const { config } = stored;
    const { clusterId, registrationKey, registrationKid, caCertPem } = await pki.get({ clusterId: config.cluster.id, secretsPrefix: config.cluster.secrets.prefix });
    const ttl = shardSettings(config).gc.registrationTimeoutMs;
    const { token } = mintNonce(
      registrationKey,
      { cluster: clusterId, shard: input.shard, tenant: input.tenant, group: input.group, instanceId: input.instanceId, caFingerprint: certificateFingerprint(caCertPem) },
      ttl,
      deps.now?.() ?? Date.now(),
      registrationKid,
    );
    return { nonce: token, caCertificate: caCertPem };
  };
}
