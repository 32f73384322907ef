/**
 * The store `cluster.secrets` names, built once per distinct secrets config and reused: an
 * object-storage store loads its keys (a Secrets Manager or Parameter Store read each) once, not
 * per request. A config naming other keys (a rotation) gets a new store.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { secretsCacheTtlMs, secretsPrefix, type SecretsConfig } from '../../common/config/secrets';
import { CachedSecretStore } from './cached';
import { loadKeyRing } from './keys';
import { ObjectStorageSecretStore } from './object-storage';
import { ParameterStoreSecretStore } from './parameter-store';
import { SecretsManagerStore } from './secrets-manager';
import type { SecretStore } from './store';

export interface SecretStoreClients {
  s3: S3Client;
  secrets: SecretsManagerClient;
  ssm: SSMClient;
}

/** What a store is made from: the cluster's id (default prefixes), its secrets config and bucket. */
export interface SecretsLocation {
  clusterId: string;
  secrets: SecretsConfig;
  /** The bucket holding cluster/ (object storage). */
  bucket: string;
}

/** The provider's store without cache_ttl (rotation and `nstance secrets` always read through). */
export async function createRawSecretStore(clients: SecretStoreClients, where: SecretsLocation, env: NodeJS.ProcessEnv = process.env): Promise<SecretStore> {
  const prefix = secretsPrefix(where.secrets);
  switch (where.secrets.provider) {
    case 'aws-secrets-manager':
      return new SecretsManagerStore(clients.secrets, prefix);
    case 'aws-parameter-store':
      return new ParameterStoreSecretStore(clients.ssm, prefix);
    case 'object-storage':
      return new ObjectStorageSecretStore(clients.s3, where.bucket, prefix, await loadKeyRing(where.secrets, clients, env));
  }
}

export async function createSecretStore(clients: SecretStoreClients, where: SecretsLocation, env: NodeJS.ProcessEnv = process.env): Promise<SecretStore> {
  const store = await createRawSecretStore(clients, where, env);
  const ttl = secretsCacheTtlMs(where.secrets);
  return ttl ? new CachedSecretStore(store, ttl) : store;
}

export function secretsLocationKey(where: SecretsLocation): string {
  return JSON.stringify([where.clusterId, where.bucket, where.secrets]);
}

/** One store per distinct location; a failed build (a key not readable yet) is not remembered. */
export class SecretStores {
  private readonly stores = new Map<string, Promise<SecretStore>>();

  constructor(
    private readonly clients: SecretStoreClients,
    private readonly env: NodeJS.ProcessEnv = process.env,
    /** `raw`: without cache_ttl (key rotation must see what is stored now). */
    private readonly options: { raw?: boolean } = {},
  ) {}

  for(where: SecretsLocation): Promise<SecretStore> {
    const id = secretsLocationKey(where);
    let found = this.stores.get(id);
    if (!found) {
      found = (this.options.raw ? createRawSecretStore : createSecretStore)(this.clients, where, this.env);
      found.catch(() => this.stores.delete(id));
      // A handful of configs live at once at most (a rotation adds one); bound it anyway.
      if (this.stores.size >= 16) this.stores.delete(this.stores.keys().next().value as string);
      this.stores.set(id, found);
    }
    return found;
  }
}
