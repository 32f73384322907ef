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
import { pkiLocation } from '../../adapters/pki/location';
import type { CaSubject } from '../../adapters/pki/x509';
import { writeAudit } from '../../adapters/s3/audit';
import { recordAgentRejection } from '../../adapters/metrics/domain-metrics';
import { ShardConfigCaches, type ShardConfigCache } from '../../adapters/s3/config-cache';
import { ObjectStore } from '../../adapters/s3/objects';
import { SecretStores } from '../../adapters/secrets/factory';
import type { SecretStore } from '../../adapters/secrets/store';
import { secretsPrefix, type SecretsConfig } from '../../common/config/secrets';
import { latestRunStatus, runningInstanceOwners } from '../../adapters/temporal/workflow-status';
import type { LeadershipGate } from '../leadership/gate';
import type { HealthTracker } from './health-tracker';
import { LiveInstances } from './live-instances';
import { CLIENT_CERT_VALIDITY_DAYS } from './agent-certificate';
import { RejectionAggregator, type Rejection } from './rejections';
import { DEFAULT_SECRET_FILES_TTL_MS, SecretFiles } from './secret-files';
import { TemplateFiles } from './template-files';
import { CertificateFiles } from './certificate-files';
import { CertificateFileRecords } from './certificate-file-records';
import { FileReports } from './file-reports';

export interface ShardView {
  clusterId: string;
  /** The resolved cluster.secrets prefix. */
  secretsPrefix: string;
  /** cluster.secrets; absent means Secrets Manager under secretsPrefix (a view given by a test). */
  secrets?: SecretsConfig;
  healthCheckIntervalMs: number;
  leaderIp?: string;
  /** `certificates.ca`, rendered: how the CA is made should this worker be the first to make it. */
  ca?: CaSubject;
}

/**
 * How long a listing of the shard's running instances is believed without listing again.
 * It bounds how long a terminated instance's certificate is still served (plus visibility's lag).
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
  /** Certificate files issued to the shard's instances, and agents' submitted public keys (memory only). */
  readonly certificateFiles: CertificateFiles;
  /** What each instance's last health report said about its files (memory only). */
  readonly fileReports = new FileReports();
  /** Issued certificate files kept in S3 for the next leader, per cluster PKI (its CA key seals server-made keys). */
  private readonly fileRecords = new WeakMap<ClusterPki, CertificateFileRecords>();
  /** The view derived from the config version last seen (derived once per version). */
  private derived: { from: NstanceConfig; view: ShardView } | undefined;
  /** Which instances still run: every mTLS endpoint serves only those (see live-instances.ts). */
  readonly liveInstances: LiveInstances;
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
      /** Lifetime of agent client certificates (default CLIENT_CERT_VALIDITY_DAYS; tests shorten it to see renewals). */
      clientCertValidityDays?: number;
      /** How long a group's secret files are served from memory (DEFAULT_SECRET_FILES_TTL_MS). */
      secretFilesTtlMs?: number;
      /** The clock certificate files are issued and reissued by (tests move it on to see a reissue; default `now`). */
      certificateFilesNow?: () => number;
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
    this.liveInstances = new LiveInstances({
      list: async () => new Set((await runningInstanceOwners(deps.client, deps.shard)).keys()),
      describe: (id) => latestRunStatus(deps.client, instanceWorkflowId(deps.shard, id)),
      ttlMs: deps.instanceCheckTtlMs ?? INSTANCE_CHECK_TTL_MS,
      now: deps.now,
      onError: (err) => deps.log(`agent API: listing the shard's running instances failed (describing each instead): ${err.message}`),
    });
    this.secretFiles = new SecretFiles({ ttlMs: deps.secretFilesTtlMs, now: deps.now });
    this.templateFiles = new TemplateFiles({ ttlMs: deps.secretFilesTtlMs ?? DEFAULT_SECRET_FILES_TTL_MS, now: deps.now });
    this.certificateFiles = new CertificateFiles({ now: deps.certificateFilesNow ?? deps.now, log: deps.log });
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

  get clientCertValidityDays(): number {
    return this.deps.clientCertValidityDays ?? CLIENT_CERT_VALIDITY_DAYS;
  }

  /** The shard's settings; undefined while no config has been applied. From memory: see ShardConfigCache. */
  async view(): Promise<ShardView | undefined> {
    const stored = await this.config.config();
    if (!stored) return undefined;
    const { config } = stored;
    if (this.derived?.from === config) return this.derived.view;
    const view: ShardView = {
      clusterId: config.cluster.id,
      secretsPrefix: secretsPrefix(config.cluster.secrets),
      secrets: config.cluster.secrets,
      healthCheckIntervalMs: shardSettings(config).healthCheckIntervalMs,
      leaderIp: config.shard.leader_network?.ip,
      ca: pkiLocation(config, this.deps.bucket).ca,
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

  certificateFileRecords(pki: ClusterPki): CertificateFileRecords {
    let records = this.fileRecords.get(pki);
    if (!records) {
      records = new CertificateFileRecords({ objects: this.objects, shard: this.deps.shard, caKey: pki.caKey, caCertPem: pki.caCertPem });
      this.fileRecords.set(pki, records);
    }
    return records;
  }

  private secretsLocation(view: ShardView) {
    return { clusterId: view.clusterId, bucket: this.deps.bucket, secrets: view.secrets ?? { provider: 'aws-secrets-manager' as const, prefix: view.secretsPrefix }, ca: view.ca };
  }

  /** The store cluster.secrets names (built once per secrets config). */
  secretStore(view: ShardView): Promise<SecretStore> {
    return this.secretStores.for(this.secretsLocation(view));
  }

  /**
   * The status of the instance's workflow: RUNNING while the shard's listing (at most
   * instanceCheckTtlMs old) has it; otherwise described, and a closed answer remembered (final:
   * instance ids are never reused). See LiveInstances for the cost at fleet size.
   */
  async instanceStatus(instanceId: string): Promise<WorkflowExecutionStatusName | 'NOT_FOUND'> {
    return this.liveInstances.status(instanceId);
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
