/**
 * What every agent API handler needs: the shard's settings (read from S3 config
 * and cached briefly), the cluster PKI, stores, the Temporal client, the health
 * tracker and the leadership gate.
 */
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { shardSettings } from '../../common/config';
import type { AuditEntry } from '../../common/types';
import type { AwsClients } from '../../activities/aws/clients';
import { PkiCache, type ClusterPki } from '../../activities/pki/cluster-ca';
import { writeAudit } from '../../activities/s3/audit';
import { ShardConfigStore } from '../../activities/s3/config-store';
import { ObjectStore } from '../../activities/s3/objects';
import { SecretStore } from '../../activities/secrets/store';
import type { LeadershipGate } from '../leadership/gate';
import type { HealthTracker } from './health-tracker';

export interface ShardView {
  clusterId: string;
  secretsPrefix: string;
  healthCheckIntervalMs: number;
  leaderIp?: string;
}

const CONFIG_TTL_MS = 10_000;

export class AgentApiContext {
  readonly objects: ObjectStore;
  readonly secrets: SecretStore;
  readonly pkiCache: PkiCache;
  private cached: { view: ShardView; at: number } | undefined;
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
      log: (line: string) => void;
      now: () => number;
    },
  ) {
    this.objects = new ObjectStore({ s3: deps.aws.s3, bucket: deps.bucket });
    this.secrets = new SecretStore(deps.aws.secrets);
    this.pkiCache = deps.pki ?? new PkiCache({ secrets: this.secrets, objects: this.objects });
  }

  get shard(): string {
    return this.deps.shard;
  }

  /** The shard's settings; undefined while no config has been applied. */
  async view(): Promise<ShardView | undefined> {
    const now = this.deps.now();
    if (this.cached && now - this.cached.at < CONFIG_TTL_MS) return this.cached.view;
    const stored = await new ShardConfigStore(this.objects, this.deps.shard).readConfig();
    if (!stored) return undefined;
    const { config } = stored;
    const view: ShardView = {
      clusterId: config.cluster.id,
      secretsPrefix: config.cluster.secrets.prefix,
      healthCheckIntervalMs: shardSettings(config).healthCheckIntervalMs,
      leaderIp: config.shard.leader_network?.ip,
    };
    this.cached = { view, at: now };
    return view;
  }

  /** Last known health interval, for the tracker's timer (which cannot await). */
  get healthIntervalMs(): number {
    return this.cached?.view.healthCheckIntervalMs ?? 60_000;
  }

  async pki(): Promise<{ view: ShardView; pki: ClusterPki }> {
    const view = await this.view();
    if (!view) throw new Error(`no config for shard "${this.deps.shard}" yet`);
    return { view, pki: await this.pkiCache.get({ clusterId: view.clusterId, secretsPrefix: view.secretsPrefix }) };
  }

  /** One audit object per call (a fresh dedupe key: each request is its own event). Never throws. */
  async audit(action: string, fields: Omit<AuditEntry, 'shard' | 'action' | 'actor' | 'at'> & { actor?: string }): Promise<void> {
    const entry: AuditEntry = {
      shard: this.deps.shard,
      action,
      actor: fields.actor ?? `agent-api:${this.deps.workerId}`,
      at: new Date(this.deps.now()).toISOString(),
      ...fields,
    };
    try {
      await writeAudit(this.objects, entry, randomUUID());
    } catch (err) {
      this.deps.log(`agent API: audit ${action} failed: ${(err as Error).message}`);
    }
  }
}
