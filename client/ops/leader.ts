/**
 * `nstance leader` and `nstance leader handoff`: read the leader workflow's state
 * (query) plus its pending activities (describe), whose heartbeat times are the
 * candidates' last-seen times.
 */
import type { Client } from '@temporalio/client';
import { optionalTsToMs } from '@temporalio/common/lib/time';
import { leaderWorkflowId } from '../../common/names';
import type { HandoffSummary, LeaderInfo, LeaderStatus, NetworkRepair } from '../../workflows/decisions/leader';
import { leaderHandoffSignal, leaderStatusQuery } from '../../workflows/definitions';

/** One candidate row of `nstance leader --json` (stable: fields are only ever added). */
export interface CandidateRow {
  workerId: string;
  ec2InstanceId: string | null;
  agentAddress: string | null;
  role: 'leader' | 'standby' | 'lost' | 'leaving';
  /** Last heartbeat Temporal received from its serve or stand-by activity (else its announcement). */
  lastSeen: string | null;
  announcedAt: string;
}

export interface LeaderView {
  shard: string;
  epoch: number;
  leader: (LeaderInfo & { lastSeen: string | null }) | null;
  interfaceId: string | null;
  heartbeatTimeoutMs: number;
  handoffs: number;
  lastHandoff: HandoffSummary | null;
  lastError: string | null;
  /** Set while the leader's ENI is not in place and the workflow keeps retrying the move. */
  networkRepair: NetworkRepair | null;
  candidates: CandidateRow[];
}

/** Identity the leadership worker polls with: `nstance-worker/<workerId>/leadership`. */
function workerOf(identity: string | null | undefined): string | undefined {
  const m = /^nstance-worker\/(.+)\/leadership$/.exec(identity ?? '');
  return m?.[1];
}

export async function leaderStatus(client: Client, shard: string): Promise<LeaderStatus> {
  try {
    return await client.workflow.getHandle(leaderWorkflowId(shard)).query(leaderStatusQuery);
  } catch (err) {
    throw new Error(`no leader workflow for shard "${shard}" (${(err as Error).message}): start a worker with NSTANCE_SHARD=${shard}`, { cause: err });
  }
}

export async function leaderView(client: Client, shard: string): Promise<LeaderView> {
  const handle = client.workflow.getHandle(leaderWorkflowId(shard));
  const status = await leaderStatus(client, shard);
  const seen = new Map<string, number>();
  const described = await handle.describe();
  for (const a of described.raw.pendingActivities ?? []) {
    const worker = workerOf(a.lastWorkerIdentity);
    const at = optionalTsToMs(a.lastHeartbeatTime) ?? optionalTsToMs(a.lastStartedTime);
    if (worker && at !== undefined) seen.set(worker, Math.max(at, seen.get(worker) ?? 0));
  }
  const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());
  return {
    shard: status.shard,
    epoch: status.epoch,
    leader: status.leader ? { ...status.leader, lastSeen: iso(seen.get(status.leader.workerId)) } : null,
    interfaceId: status.interfaceId ?? null,
    heartbeatTimeoutMs: status.heartbeatTimeoutMs,
    handoffs: status.handoffs,
    lastHandoff: status.lastHandoff ?? null,
    lastError: status.lastError ?? null,
    networkRepair: status.networkRepair ?? null,
    candidates: status.candidates.map((c) => ({
      workerId: c.workerId,
      ec2InstanceId: c.ec2InstanceId ?? null,
      agentAddress: c.agentAddress ?? null,
      role: status.leader?.workerId === c.workerId ? 'leader' : c.leaving ? 'leaving' : c.alive ? 'standby' : 'lost',
      lastSeen: iso(seen.get(c.workerId)) ?? (c.alive ? c.announcedAt : (c.lostAt ?? c.announcedAt)),
      announcedAt: c.announcedAt,
    })),
  };
}

export interface HandoffOptions {
  to?: string;
  actor: string;
  timeoutMs?: number;
  pollMs?: number;
}

/** Asks for a graceful handoff and waits until a new epoch leads (the ENI moved, or the attempt recorded an error). */
export interface HandoffResult {
  from?: string;
  to: string;
  epoch: number;
  summary?: HandoffSummary;
  /** The workflow is still retrying the ENI move of the new epoch (summary.error says why it failed). */
  networkRepair?: NetworkRepair;
}

/** Why a handoff that elected a new epoch is still a failure for the caller (exit non-zero), if it is. */
export function incompleteHandoff(result: HandoffResult): string | undefined {
  const error = result.summary?.error;
  if (!error) return undefined;
  return `handoff incomplete: ${error}${result.networkRepair ? ' (the leader workflow keeps retrying the leader network move)' : ''}`;
}

export async function requestHandoff(client: Client, shard: string, options: HandoffOptions): Promise<HandoffResult> {
  const before = await leaderStatus(client, shard);
  if (options.to && !before.candidates.some((c) => c.workerId === options.to)) {
    throw new Error(`no candidate "${options.to}" in shard ${shard}; candidates: ${before.candidates.map((c) => c.workerId).join(', ') || 'none'}`);
  }
  await client.workflow.getHandle(leaderWorkflowId(shard)).signal(leaderHandoffSignal, { to: options.to, reason: 'requested', actor: options.actor });
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  for (;;) {
    const now = await leaderStatus(client, shard);
    const done = now.lastHandoff && now.lastHandoff.epoch > before.epoch && now.leader?.epoch === now.lastHandoff.epoch;
    if (done && now.leader) return { from: before.leader?.workerId, to: now.leader.workerId, epoch: now.epoch, summary: now.lastHandoff, networkRepair: now.networkRepair };
    if (now.epoch === before.epoch && now.lastError?.startsWith('handoff:')) throw new Error(now.lastError);
    if (Date.now() > deadline) throw new Error(`handoff did not complete within ${options.timeoutMs ?? 60_000} ms (epoch still ${now.epoch}, leader ${now.leader?.workerId ?? 'none'})`);
    await new Promise((r) => setTimeout(r, options.pollMs ?? 250));
  }
}
