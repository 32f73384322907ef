/**
 * `nstance secrets`: the custom secrets under cluster.secrets.prefix, in whichever store the
 * shard's config names, and the key rotation workflow. Values are only ever printed by `get
 * --reveal`; audit entries name the secret and who changed it, never the value.
 */
import { randomUUID } from 'node:crypto';
import { WorkflowFailedError, WorkflowIdConflictPolicy, type Client, type WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import type { AwsClients } from '../../adapters/aws/clients';
import { writeAudit } from '../../adapters/s3/audit';
import { FRESH, ShardConfigCache } from '../../adapters/s3/config-cache';
import { ObjectStore } from '../../adapters/s3/objects';
import { createRawSecretStore } from '../../adapters/secrets/factory';
import { checkSecretName, type SecretStore } from '../../adapters/secrets/store';
import { shardTaskQueue } from '../../common/names';
import { causeMessages } from '../../common/failures';
import { keyRotationRunMetadata } from '../../common/run-summaries';
import {
  keyRotationProgressQuery,
  keyRotationWorkflowId,
  type KeyRotationInput,
  type KeyRotationProgress,
  type KeyRotationResult,
} from '../../workflows/key-rotation-api';

export interface SecretsTarget {
  aws: AwsClients;
  bucket: string;
  shard: string;
  actor: string;
}

export interface OpenedSecrets {
  store: SecretStore;
  objects: ObjectStore;
  target: SecretsTarget;
}

/** The store the shard's applied config names (keys loaded from where it says, in this process). */
export async function openSecrets(target: SecretsTarget): Promise<OpenedSecrets> {
  const objects = new ObjectStore({ s3: target.aws.s3, bucket: target.bucket });
  const stored = await new ShardConfigCache(objects, target.shard).config(FRESH);
  if (!stored) throw new Error(`no config for shard "${target.shard}" in s3://${target.bucket}: run "nstance config apply" first`);
  const { cluster } = stored.config;
  const store = await createRawSecretStore(target.aws, { clusterId: cluster.id, secrets: cluster.secrets, bucket: target.bucket });
  return { store, objects, target };
}

export interface SecretView {
  name: string;
  location: string;
  bytes: number;
  /** Only with reveal. */
  value?: string;
}

export async function getSecret(opened: OpenedSecrets, name: string, reveal: boolean): Promise<SecretView> {
  const value = await opened.store.get(checkSecretName(name));
  if (value === undefined) throw new Error(`no secret "${name}" (${opened.store.locate(name)})`);
  return { name, location: opened.store.locate(name), bytes: Buffer.byteLength(value, 'utf8'), ...(reveal ? { value } : {}) };
}

async function audit(opened: OpenedSecrets, action: string, details: Record<string, unknown>): Promise<void> {
  await writeAudit(opened.objects, { shard: opened.target.shard, action, actor: opened.target.actor, at: new Date().toISOString(), details }, randomUUID());
}

export async function putSecret(opened: OpenedSecrets, name: string, value: string): Promise<{ name: string; location: string; bytes: number; created: boolean }> {
  checkSecretName(name);
  const created = (await opened.store.get(name).catch(() => 'unreadable')) === undefined;
  await opened.store.put(name, value);
  const result = { name, location: opened.store.locate(name), bytes: Buffer.byteLength(value, 'utf8'), created };
  await audit(opened, 'secrets.put', { name, location: result.location, bytes: result.bytes, created, provider: opened.store.provider });
  return result;
}

export async function deleteSecret(opened: OpenedSecrets, name: string): Promise<{ name: string; location: string; deleted: boolean }> {
  const deleted = await opened.store.delete(checkSecretName(name));
  const result = { name, location: opened.store.locate(name), deleted };
  if (deleted) await audit(opened, 'secrets.delete', { name, location: result.location, provider: opened.store.provider });
  return result;
}

/**
 * Starts the shard's key rotation, or attaches to the one already running (one per shard:
 * asking twice never runs two). Returns its handle.
 */
export async function startKeyRotation(
  client: Client,
  input: Pick<KeyRotationInput, 'shard' | 'actor' | 'pageSize' | 'pagesPerRun'>,
): Promise<WorkflowHandleWithFirstExecutionRunId<(input: KeyRotationInput) => Promise<KeyRotationResult>>> {
  return client.workflow.start<(input: KeyRotationInput) => Promise<KeyRotationResult>>('keyRotationWorkflow', {
    workflowId: keyRotationWorkflowId(input.shard),
    taskQueue: shardTaskQueue(input.shard),
    args: [input],
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    ...keyRotationRunMetadata(input.shard, input.actor, input.pageSize),
  });
}

/** Polls the rotation's progress until it ends (continue-as-new runs are followed), then returns its result. */
export async function followKeyRotation(
  client: Client,
  shard: string,
  onProgress: (progress: KeyRotationProgress) => void,
  pollMs = 500,
): Promise<KeyRotationResult> {
  const handle = client.workflow.getHandle<(input: KeyRotationInput) => Promise<KeyRotationResult>>(keyRotationWorkflowId(shard));
  const result = handle.result();
  let finished = false;
  void result.then(
    () => (finished = true),
    () => (finished = true),
  );
  while (!finished) {
    try {
      onProgress(await handle.query(keyRotationProgressQuery));
    } catch {
      // Between runs (continue-as-new) or before the first task: ask again next time.
    }
    await Promise.race([result.catch(() => undefined), new Promise((r) => setTimeout(r, pollMs))]);
  }
  try {
    return await result;
  } catch (err) {
    // The workflow's failure says only "Workflow execution failed": its cause (an activity's message) says why.
    if (err instanceof WorkflowFailedError) throw new Error(`key rotation failed: ${causeMessages(err).at(-1)}`, { cause: err });
    throw err;
  }
}
