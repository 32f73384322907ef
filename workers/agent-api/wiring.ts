/**
 * How a shard worker gets the agent side: the nonce issuer for the launch
 * activity and the agent API server. Kept here so workers/worker.ts only needs
 * a couple of lines.
 */
import type { Client } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import type { ActivityDeps } from '../../activities/deps';
import type { AwsClients } from '../../adapters/aws/clients';
import { PkiCache } from '../../adapters/pki/cluster-ca';
import { createNonceIssuer } from '../../adapters/pki/issuer';
import { ShardConfigCaches } from '../../adapters/s3/config-cache';
import { ObjectStore } from '../../adapters/s3/objects';
import { SecretStores } from '../../adapters/secrets/factory';
import { alwaysLeader, type LeadershipGate } from '../leadership/gate';
import { AgentApi, type AgentApiListenOptions } from './server';

export interface AgentApiWorkerOptions extends AgentApiListenOptions {
  /** Defaults to alwaysLeader(): a single worker serves agents. Leader election passes its gate. */
  gate?: LeadershipGate;
  log?: (line: string) => void;
}

export interface AgentServices {
  activityDeps: Pick<ActivityDeps, 'issueRegistrationNonce'>;
  /**
   * The worker's config caches, which the nonce issuer and the agent API read: hand them to any
   * other reader in the process (the group activities) so it shares the one copy of the config.
   */
  configs: ShardConfigCaches;
  /** Ties the agent API to the worker's run: it starts with run() and closes when run() ends. */
  attach(worker: Worker): Worker;
}

export function agentServices(options: {
  client: Client;
  aws: AwsClients;
  bucket: string;
  shard: string;
  workerId: string;
  registrationNonces?: boolean;
  agentApi?: AgentApiWorkerOptions;
}): AgentServices {
  const objects = new ObjectStore({ s3: options.aws.s3, bucket: options.bucket });
  // One cache for both, so a worker creates (or reads) the cluster PKI once.
  const pki = new PkiCache({ stores: new SecretStores(options.aws), objects });
  const log = options.agentApi?.log ?? ((line: string) => console.log(line));
  const configs = new ShardConfigCaches(objects, { onError: (err, key) => log(`config cache: revalidating ${key} failed (serving the cached copy): ${(err as Error).message}`) });
  const nonces = options.registrationNonces || options.agentApi !== undefined;
  const activityDeps = nonces ? { issueRegistrationNonce: createNonceIssuer({ aws: options.aws, bucket: options.bucket, pki, configs }) } : {};
  const listen = options.agentApi;
  if (!listen) return { activityDeps, configs, attach: (worker) => worker };
  return {
    activityDeps,
    configs,
    attach(worker) {
      const run = worker.run.bind(worker);
      // Worker has no start/stop hooks, so run() is wrapped: the API lives exactly as long as the worker runs.
      worker.run = async () => {
        const api = new AgentApi({ ...options, ...listen, gate: listen.gate ?? alwaysLeader(), pki, configs, log });
        // Started in the background: it waits for the shard's config, which may be applied after the worker
        // starts, and retries a failed start (AWS throttling while creating the CA, port still in use).
        void (async () => {
          while (!api.isClosed) {
            try {
              await api.start();
              return;
            } catch (err) {
              if (api.isClosed) return;
              log(`agent API failed to start (retrying in 5s): ${(err as Error).message}`);
              await new Promise((r) => setTimeout(r, 5000).unref());
            }
          }
        })();
        try {
          return await run();
        } finally {
          await api.close();
        }
      };
      return worker;
    },
  };
}
