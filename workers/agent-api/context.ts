/**
 * What every agent API handler needs: the shard's settings (from the worker's config
 * cache: no S3 read per request), the cluster PKI (memoised), the group's secret files
 * (cached briefly), stores, the Temporal client, the health tracker, the leadership gate
 * and the rejection aggregator.
 */
import { randomUUID } from 'node:crypto';
import type { Client, WorkflowExecutionStatusName } from '@temporalio/client';
import { shardSettings, type NstanceConfig } from '../../common/config';
import { instanceWorkflowId } from '../../common/names';
import type { AuditEntry } from '../../common/types';
import type { AwsClients } from '../../adapters/aws/clients';
import { PkiCache, type ClusterPki } from '../../adapters/pki/cluster-ca';
import { writeAudit } from '../../adapters/s3/audit';
import { recordAgentRejection } from '../../adapters/metrics/domain-metrics';
import { ShardConfigCaches, type ShardConfigCache } from '../../adapters/s3/config-cache';
import { ObjectStore } from '../../adapters/s3/objects';
import { SecretStores } from '../../adapters/secrets/factory';
import type { SecretStore } from '../../adapters/secrets/store';
import { secretsPrefix, type SecretsConfig } from '../../common/config/secrets';
import { latestRunStatus } from '../../adapters/temporal/workflow-status';
import type { LeadershipGate } from '../leadership/gate';
import type { HealthTracker } from './health-tracker';
import { RejectionAggregator, type Rejection } from './rejections';
import { DEFAULT_SECRET_FILES_TTL_MS, SecretFiles } from './secret-files';
import { TemplateFiles } from './template-files';

export interface ShardView {
  clusterId: string;
  /** The resolved cluster.secrets prefix. */
  secretsPrefix: string;
  /** cluster.secrets; absent means Secrets Manager under secretsPrefix (a view given by a test). */
  secrets?: SecretsConfig;
  healthCheckIntervalMs: number;
  leaderIp?: string;
}

/**
 * How long "this instance's workflow is running" is believed without asking Temporal again.
 * It bounds how long a terminated instance's certificate can still fetch files.
 */
export const INSTANCE_CHECK_TTL_MS = 30_000;

export class AgentApiContext {
  readonly objects: ObjectStore;
  readonly secretStores: SecretStores;
  readonly pkiCache: PkiCache;
  readonly config: ShardConfigCache;
  readonly secretFiles: SecretFiles;
  /** The templates' `files`, rendered per instance (secret and storage contents cached like secretFiles). */
  readonly templateFiles: TemplateFiles;
  readonly rejections: RejectionAggregator;
  /** The view derived from the config version last seen (derived once per version). */
  private derived: { from: NstanceConfig; view: ShardView } | undefined;
  /** Instance id → until when its workflow is taken to be running (positive answers only). */
  private readonly runningUntil = new Map<string, number>();
  private sweptAt = 0;
  tracker!: HealthTracker;

  constructor(
    readonly deps: {
      client: Client;
      aws: AwsClients;
      bucket: string;
      shard: string;
      workerId: string;
      gate: LeadershipGate;
      pki?: PkiCache;
      /** The worker's config caches (shared with the nonce issuer); one is made when absent. */
      configs?: ShardConfigCaches;
      log: (line: string) => void;
      now: () => number;
      /** Defaults to INSTANCE_CHECK_TTL_MS. */
      instanceCheckTtlMs?: number;
      /** How long a group's secret files are served from memory (DEFAULT_SECRET_FILES_TTL_MS). */
      secretFilesTtlMs?: number;
      /** Rejections are summarised per window of this length (default 60 s). */
      rejectionWindowMs?: number;
      /** Rejection summaries per window at most. */
      maxRejectionObjectsPerWindow?: number;
    },
  ) {
    this.objects = new ObjectStore({ s3: deps.aws.s3, bucket: deps.bucket });
    this.secretStores = new SecretStores(deps.aws);
    this.pkiCache = deps.pki ?? new PkiCache({ stores: this.secretStores, objects: this.objects });
    const configs = deps.configs ?? new ShardConfigCaches(this.objects, { now: deps.now, onError: (err, key) => deps.log(`agent API: revalidating ${key} failed (serving the cached copy): ${(err as Error).message}`) });
    this.config = configs.for(deps.shard);
    this.secretFiles = new SecretFiles({ ttlMs: deps.secretFilesTtlMs, now: deps.now });
    this.templateFiles = new TemplateFiles({ ttlMs: deps.secretFilesTtlMs ?? DEFAULT_SECRET_FILES_TTL_MS, now: deps.now });
    this.rejections = new RejectionAggregator({
      shard: deps.shard,
      actor: `agent-api:${deps.workerId}`,
      write: async (entry, dedupeKey) => {
        await writeAudit(this.objects, entry, dedupeKey);
      },
      windowMs: deps.rejectionWindowMs,
      maxObjectsPerWindow: deps.maxRejectionObjectsPerWindow,
      now: deps.now,
      log: deps.log,
    });
  }

  get shard(): string {
    return this.deps.shard;
  }

  /** The shard's settings; undefined while no config has been applied. From memory: see ShardConfigCache. */
  async view(): Promise<ShardView | undefined> {
    const stored = await this.config.config();
    if (!stored) return undefined;
    const { config } = stored;
    if (this.derived?.from === config) return this.derived.view;
    const view: ShardView = {
      clusterId: config.cluster.id,
      secretsPrefix: secretsPrefix(config.cluster.secrets, config.cluster.id),
      secrets: config.cluster.secrets,
      healthCheckIntervalMs: shardSettings(config).healthCheckIntervalMs,
      leaderIp: config.shard.leader_network?.ip,
    };
    this.derived = { from: config, view };
    return view;
  }

  /** Last known health interval, for the tracker's timer (which cannot await). */
  get healthIntervalMs(): number {
    return this.derived?.view.healthCheckIntervalMs ?? 60_000;
  }

  async pki(): Promise<{ view: ShardView; pki: ClusterPki }> {
    const view = await this.view();
    if (!view) throw new Error(`no config for shard "${this.deps.shard}" yet`);
    return { view, pki: await this.pkiCache.get(this.secretsLocation(view)) };
  }

  private secretsLocation(view: ShardView) {
    return { clusterId: view.clusterId, bucket: this.deps.bucket, secrets: view.secrets ?? { provider: 'aws-secrets-manager' as const, prefix: view.secretsPrefix } };
  }

  /** The store cluster.secrets names (built once per secrets config). */
  secretStore(view: ShardView): Promise<SecretStore> {
    return this.secretStores.for(this.secretsLocation(view));
  }

  /**
   * The status of the instance's workflow. A RUNNING answer is cached for instanceCheckTtlMs, so
   * agents fetching files cost one describe per instance per TTL. Any other answer is not cached:
   * an instance id is never reused, so it is final, and only a gone instance's agent asks again.
   */
  async instanceStatus(instanceId: string): Promise<WorkflowExecutionStatusName | 'NOT_FOUND'> {
    const now = this.deps.now();
    const ttl = this.deps.instanceCheckTtlMs ?? INSTANCE_CHECK_TTL_MS;
    if ((this.runningUntil.get(instanceId) ?? 0) > now) return 'RUNNING';
    const status = await latestRunStatus(this.deps.client, instanceWorkflowId(this.deps.shard, instanceId));
    // Expired entries are dropped once per TTL, so the map holds about one TTL's worth of agents.
    if (now - this.sweptAt >= ttl) {
      for (const [id, until] of this.runningUntil) if (until <= now) this.runningUntil.delete(id);
      this.sweptAt = now;
    }
    if (status === 'RUNNING') this.runningUntil.set(instanceId, now + ttl);
    else this.runningUntil.delete(instanceId);
    return status;
  }

  /** One audit object per call (a fresh dedupe key: each request is its own event), for what was accepted. Never throws. */
  async audit(action: string, fields: Omit<AuditEntry, 'shard' | 'action' | 'actor' | 'at'> & { actor?: string }, signal?: AbortSignal): Promise<void> {
    const entry: AuditEntry = {
      shard: this.deps.shard,
      action,
      actor: fields.actor ?? `agent-api:${this.deps.workerId}`,
      at: new Date(this.deps.now()).toISOString(),
      ...fields,
    };
    try {
      await writeAudit(this.objects, entry, randomUUID(), { signal });
    } catch (err) {
      this.deps.log(`agent API: audit ${action} failed: ${(err as Error).message}`);
    }
  }

  /** A refused request: counted in memory and audited in the window's summary (see RejectionAggregator), never one object each. */
  reject(rejection: Rejection): void {
    recordAgentRejection(rejection.action);
    this.rejections.record(rejection);
  }
}
