/**
 * Leader-election activities run on the shard task queue (any worker): reading
 * where the leader network is, moving it, and the epoch-fenced leader record.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { S3Client } from '@aws-sdk/client-s3';
import { ConfigValidationError } from '../common/config';
import { isStaleEpoch } from '../workflows/decisions/leader';
import { describeInterface, moveLeaderNetwork, type MoveRequest, type MoveResult } from '../adapters/ec2/network-interfaces';
import { ShardConfigStore } from '../adapters/s3/config-store';
import { ObjectStore, WriteConflictError } from '../adapters/s3/objects';

export interface LeaderNetwork {
  interfaceId?: string;
  ip?: string;
}

/** The shard's current leader, as the last leader-only write left it. */
export interface LeaderRecord {
  shard: string;
  epoch: number;
  workerId: string;
  ec2InstanceId?: string;
  agentAddress?: string;
  since: string;
}

export function leaderRecordKey(shard: string): string {
  return `shard/${shard}/leader.json`;
}

export type LeaderRecordWrite = { written: boolean; etag?: string };

/**
 * Writes the leader record only if no newer epoch has written it: read, refuse
 * a stale epoch, then write with If-Match on what was read (If-None-Match when
 * absent) so a concurrent writer makes us re-read instead of overwriting.
 */
export async function writeLeaderRecord(store: ObjectStore, record: LeaderRecord): Promise<LeaderRecordWrite> {
  const key = leaderRecordKey(record.shard);
  for (let attempt = 0; attempt < 5; attempt++) {
    const current = await store.read(key);
    const stored = current ? (JSON.parse(current.text) as LeaderRecord) : undefined;
    if (stored && isStaleEpoch(record.epoch, stored.epoch)) {
      throw ApplicationFailure.create({
        type: 'StaleEpoch',
        nonRetryable: true,
        message: `refusing leader write for epoch ${record.epoch} (${record.workerId}): epoch ${stored.epoch} (${stored.workerId}) already wrote ${key}`,
      });
    }
    // A retry of a write that already landed.
    if (stored && stored.epoch === record.epoch && stored.workerId === record.workerId) return { written: false, etag: current?.etag };
    try {
      const etag = await store.write(key, `${JSON.stringify(record, null, 2)}\n`, current ? { etag: current.etag } : { absent: true });
      return { written: true, etag };
    } catch (err) {
      if (!(err instanceof WriteConflictError)) throw err;
    }
  }
  throw ApplicationFailure.create({ type: 'WriteConflict', message: `${key}: too many concurrent writers` });
}

export async function readLeaderRecord(store: ObjectStore, shard: string): Promise<LeaderRecord | undefined> {
  const current = await store.read(leaderRecordKey(shard));
  return current ? (JSON.parse(current.text) as LeaderRecord) : undefined;
}

/** The newest epoch earlier leader-workflow runs left behind, per place it is kept. */
export interface SeenEpochs {
  /** `epoch` of shard/<shard>/leader.json. */
  record?: number;
  /** `nstance:leader-epoch` tag of the leader ENI, when the shard has one. */
  interfaceTag?: number;
  interfaceId?: string;
}

export interface LeaderActivityDeps {
  ec2: EC2Client;
  objects: ObjectStore;
  pollMs?: number;
}

export function createLeaderActivities(deps: LeaderActivityDeps) {
  /** shard.leader_network from the stored config; empty when there is none (election still works). */
  async function loadLeaderNetwork(shard: string): Promise<LeaderNetwork> {
    try {
      const stored = await new ShardConfigStore(deps.objects, shard).readConfig();
      const net = stored?.config.shard.leader_network;
      return net ? { interfaceId: net.interface_id, ip: net.ip } : {};
    } catch (err) {
      if (err instanceof ConfigValidationError) throw ApplicationFailure.create({ type: 'ConfigInvalid', nonRetryable: true, message: err.message });
      throw err;
    }
  }

  return {
    loadLeaderNetwork,

    /**
     * For a fresh leader-workflow run: the epochs left on the two fenced writes. A shard
     * without a leader network, or with a broken config, has only the record to go by;
     * S3 or EC2 being unreachable fails (and is retried), because guessing low would
     * elect at an epoch the fence refuses.
     */
    async readLeaderEpoch(shard: string): Promise<SeenEpochs> {
      const seen: SeenEpochs = { record: (await readLeaderRecord(deps.objects, shard))?.epoch };
      let interfaceId: string | undefined;
      try {
        interfaceId = (await loadLeaderNetwork(shard)).interfaceId;
      } catch (err) {
        if (!(err instanceof ApplicationFailure && err.type === 'ConfigInvalid')) throw err;
      }
      if (!interfaceId) return seen;
      try {
        seen.interfaceTag = (await describeInterface(deps.ec2, interfaceId)).epoch;
        seen.interfaceId = interfaceId;
      } catch (err) {
        // The ENI does not exist (or is refused): the handoff reports that; the record still counts.
        if (!(err instanceof ApplicationFailure && err.nonRetryable)) throw err;
      }
      return seen;
    },

    async moveLeaderNetwork(req: MoveRequest): Promise<MoveResult> {
      const ctx = Context.current();
      return moveLeaderNetwork({ ec2: deps.ec2, pollMs: deps.pollMs, sleep: (ms) => ctx.sleep(ms), progress: (step) => ctx.heartbeat(step) }, req);
    },

    async writeLeaderRecord(record: LeaderRecord): Promise<LeaderRecordWrite> {
      return writeLeaderRecord(deps.objects, record);
    },
  };
}

export type LeaderActivities = ReturnType<typeof createLeaderActivities>;

/** The shard-queue leader activities, from the common activity dependencies. */
export function leaderActivitiesFor(deps: { aws: { ec2: EC2Client; s3: S3Client }; bucket: string; pollIntervalMs?: number }): LeaderActivities {
  return createLeaderActivities({ ec2: deps.aws.ec2, objects: new ObjectStore({ s3: deps.aws.s3, bucket: deps.bucket }), pollMs: deps.pollIntervalMs });
}
