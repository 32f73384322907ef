import type { Client } from '@temporalio/client';
import { groupWorkflowId, instanceWorkflowId } from '../../common/names';
import { runningInShard, SA } from '../../common/search-attributes';
import { PHASES, type GroupRef, type GroupStatus, type Member, type Phase, type StatusPage } from '../../common/types';
import { groupStatusQuery } from '../../workflows/definitions';

/** One row of `nstance groups --json` (stable: fields are only ever added). */
export interface GroupRow {
  shard: string;
  tenant: string;
  group: string;
  desired: number;
  running: number;
  pending: number;
  draining: number;
  /** Of `running`, those in service. */
  inService: number;
  lastError?: string;
}

/** One row of `nstance instances --json` (stable: fields are only ever added). */
export interface InstanceRow {
  id: string;
  ec2InstanceId: string | null;
  group: string;
  phase: string;
  privateIp: string | null;
  launchedAt: string | null;
  /** The type EC2 launched it as (a fallback type when the preferred had no capacity); null until launched. */
  instanceType: string | null;
}

/** The members a page holds at most (the group workflow bounds pages too). */
const PAGE = 500;

/**
 * Live group statuses of a shard, read from the group workflows themselves. By default
 * counts only; `members: true` pages through every member of every group.
 */
export async function groupStatuses(client: Client, shard: string, options: { members?: boolean } = {}): Promise<GroupStatus[]> {
  const query = runningInShard('groupWorkflow', shard);
  const ids: string[] = [];
  for await (const execution of client.workflow.list({ query })) ids.push(execution.workflowId);
  return Promise.all(ids.sort().map((id) => (options.members ? statusWithMembers(client, id) : queryStatus(client, id, { limit: 0 }))));
}

/** The group's counts and a page of its members (by default the oldest 200). */
export async function groupStatus(client: Client, ref: GroupRef, page?: StatusPage): Promise<GroupStatus> {
  return queryStatus(client, groupWorkflowId(ref.shard, ref.tenant, ref.group), page);
}

/** Counts, and every member (paged), optionally only those in some phases. */
export async function groupStatusWithMembers(client: Client, ref: GroupRef, filter: Pick<StatusPage, 'phases' | 'instanceIds'> = {}): Promise<GroupStatus> {
  return statusWithMembers(client, groupWorkflowId(ref.shard, ref.tenant, ref.group), filter);
}

function queryStatus(client: Client, workflowId: string, page?: StatusPage): Promise<GroupStatus> {
  const handle = client.workflow.getHandle(workflowId);
  return page === undefined ? handle.query(groupStatusQuery) : handle.query(groupStatusQuery, page);
}

async function statusWithMembers(client: Client, workflowId: string, filter: Pick<StatusPage, 'phases' | 'instanceIds'> = {}): Promise<GroupStatus> {
  const first = await queryStatus(client, workflowId, { ...filter, limit: PAGE });
  const members = [...first.members];
  // A group run from before fleet scale ignores the page and returns everything at once.
  while (first.members.length === PAGE && members.length < first.total) {
    const next = await queryStatus(client, workflowId, { ...filter, offset: members.length, limit: PAGE });
    if (next.members.length === 0) break;
    members.push(...next.members);
  }
  return { ...first, members };
}

export function groupRow(s: GroupStatus): GroupRow {
  const row: GroupRow = { shard: s.shard, tenant: s.tenant, group: s.group, desired: s.desired, running: s.running, pending: s.pending, draining: s.draining, inService: s.inService };
  if (s.lastError) row.lastError = s.lastError;
  return row;
}

/**
 * Each running instance workflow's NstancePhase, by workflow id. The group hears of
 * the transitions that matter to its decisions only (not `registered` or
 * `terminating`); the search attribute has every one.
 */
export async function instancePhases(client: Client, shard: string): Promise<Map<string, Phase>> {
  const query = runningInShard('instanceWorkflow', shard);
  const phases = new Map<string, Phase>();
  for await (const execution of client.workflow.list({ query })) {
    const phase = execution.typedSearchAttributes.get(SA.NstancePhase);
    if (phase && (PHASES as readonly string[]).includes(phase)) phases.set(execution.workflowId, phase as Phase);
  }
  return phases;
}

/** The later of two views of a phase: the group's and visibility's each may lag the other. */
function laterPhase(a: Phase, b: Phase | undefined): Phase {
  return b !== undefined && PHASES.indexOf(b) > PHASES.indexOf(a) ? b : a;
}

export function instanceRows(statuses: GroupStatus[], phases: ReadonlyMap<string, Phase> = new Map()): InstanceRow[] {
  return statuses.flatMap((s) =>
    s.members.map((m: Member) => {
      const told: Phase = m.leaving && m.phase !== 'terminating' ? 'draining' : m.phase;
      return {
        id: m.instanceId,
        ec2InstanceId: m.ec2InstanceId ?? null,
        group: `${s.tenant}/${s.group}`,
        phase: laterPhase(told, phases.get(instanceWorkflowId(s.shard, m.instanceId))),
        privateIp: m.privateIp ?? null,
        launchedAt: m.launchedAt ?? null,
        instanceType: m.instanceType ?? null,
      };
    }),
  );
}

/** Converged: exactly `desired` instances, all running, none on the way in or out. */
export function isConverged(s: GroupStatus): boolean {
  return s.configured && s.running === s.desired && s.pending === 0 && s.draining === 0 && s.total === s.desired;
}

export interface WaitOptions {
  timeoutMs: number;
  pollMs?: number;
  onProgress?: (status: GroupStatus) => void;
  /** Only count convergence towards this size (a status from before the scale took effect is not enough). */
  size?: number;
}

export async function waitForConvergence(client: Client, ref: GroupRef, options: WaitOptions): Promise<GroupStatus> {
  const deadline = Date.now() + options.timeoutMs;
  let last: GroupStatus | undefined;
  for (;;) {
    last = await groupStatus(client, ref, { limit: 0 });
    options.onProgress?.(last);
    if (isConverged(last) && (options.size === undefined || last.desired === options.size)) return groupStatusWithMembers(client, ref);
    if (Date.now() >= deadline) {
      const detail = `desired ${last.desired}, running ${last.running}, pending ${last.pending}, draining ${last.draining}${last.lastError ? `; last error: ${last.lastError}` : ''}`;
      throw new Error(`group ${ref.tenant}/${ref.group} did not converge within ${Math.round(options.timeoutMs / 1000)}s (${detail})`);
    }
    await new Promise((r) => setTimeout(r, options.pollMs ?? 1000));
  }
}
