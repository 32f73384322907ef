/**
 * The key-rotation workflow's activities: thin wrappers over the object-storage secret store.
 * Keys are loaded here, in the worker, from where the shard's config says they are; only their
 * ids and counts go back to the workflow.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { FRESH, ShardConfigCaches } from '../adapters/s3/config-cache';
import { ObjectStore } from '../adapters/s3/objects';
import { SecretStores } from '../adapters/secrets/factory';
import { ObjectStorageSecretStore } from '../adapters/secrets/object-storage';
import type { KeyRotationPage, KeyRotationPageInput, KeyRotationPlan } from '../workflows/key-rotation-api';
import type { ActivityDeps } from './deps';

/** Secrets in flight per page (each costs a GET, a PUT and a GET); each request adds a listener to the activity's cancellation signal, so few. */
const PAGE_CONCURRENCY = 4;

export function createSecretsActivities(deps: ActivityDeps) {
  const objects = new ObjectStore({ s3: deps.aws.s3, bucket: deps.bucket });
  const configs = deps.configs ?? new ShardConfigCaches(objects);
  // Uncached stores (rotation must see what is stored now), one per secrets config: keys are loaded once, not per page.
  const stores = new SecretStores(deps.aws, process.env, { raw: true });

  async function rotatableStore(shard: string): Promise<ObjectStorageSecretStore> {
    const stored = (await configs.for(shard).config(FRESH)) ?? undefined;
    if (!stored) throw ApplicationFailure.create({ type: 'ConfigMissing', nonRetryable: true, message: `no config for shard "${shard}": run "nstance config apply"` });
    const { cluster } = stored.config;
    if (cluster.secrets.provider !== 'object-storage') {
      throw ApplicationFailure.create({
        type: 'ConfigInvalid',
        nonRetryable: true,
        message: `cluster.secrets.provider is "${cluster.secrets.provider}": rotate-key re-encrypts object-storage secrets; ${cluster.secrets.provider} encrypts with its own KMS key (rotate that key in AWS)`,
      });
    }
    const store = await stores.for({ clusterId: cluster.id, secrets: cluster.secrets, bucket: deps.bucket });
    if (!(store instanceof ObjectStorageSecretStore)) throw new Error('object-storage config built another store');
    return store;
  }

  return {
    /** The rotation's key ids and the number of secrets (a keys-only listing: 1 request per 1,000). */
    async beginKeyRotation(shard: string): Promise<KeyRotationPlan> {
      const store = await rotatableStore(shard);
      let total = 0;
      let cursor: string | undefined;
      do {
        const page = await store.listPage({ startAfter: cursor, limit: 1000 });
        total += page.names.length;
        cursor = page.next;
        Context.current().heartbeat(total);
      } while (cursor !== undefined);
      return { keyId: store.keys.currentId, oldKeyIds: store.keys.oldIds, location: `s3://${store.bucket}/cluster/${store.prefix}`, total };
    },

    /** Re-encrypts one page of secrets under the current key (idempotent: a retried page skips what is done). */
    async rotateSecretsPage(input: KeyRotationPageInput): Promise<KeyRotationPage> {
      const store = await rotatableStore(input.shard);
      if (store.keys.currentId !== input.keyId) {
        throw ApplicationFailure.create({
          type: 'KeyChanged',
          nonRetryable: true,
          message: `cluster.secrets.encryption_key changed during the rotation (started for key ${input.keyId}, the config now has ${store.keys.currentId}): run "nstance secrets rotate-key" again`,
        });
      }
      const { names, next } = await store.listPage({ startAfter: input.startAfter, limit: input.limit });
      const result: KeyRotationPage = { scanned: 0, rewritten: 0, current: 0, missing: 0, unreadable: [], unreadableCount: 0, next };
      const ctx = Context.current();
      let index = 0;
      const worker = async () => {
        while (index < names.length) {
          const name = names[index++];
          const outcome = await store.reencrypt(name);
          result.scanned++;
          if (outcome === 'rewritten') result.rewritten++;
          else if (outcome === 'current') result.current++;
          else if (outcome === 'missing') result.missing++;
          else {
            result.unreadableCount++;
            if (result.unreadable.length < 20) result.unreadable.push(name);
          }
          ctx.heartbeat(result.scanned);
        }
      };
      await Promise.all(Array.from({ length: Math.min(PAGE_CONCURRENCY, names.length) }, worker));
      return result;
    },
  };
}
