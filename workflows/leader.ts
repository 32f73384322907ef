import {
  ActivityCancellationType,
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  condition,
  continueAsNew,
  log,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  TimeoutFailure,
  workflowInfo,
} from '@temporalio/workflow';
import type { LeaderActivities } from '../activities/leader';
import type { LeaderServeActivities } from '../activities/leader-serve';
import type { Activities } from '../activities';
import { workerTaskQueue } from '../common/names';
import { searchAttributeUpdates } from '../common/search-attributes';
import {
  chooseNextLeader,
  eligible,
  reasonForEnd,
  shouldContinueAsNew,
  stillAliveAfter,
  type Candidate,
  type HandoffReason,
  type LeaderInfo,
  type LeaderStatus,
  type ServeEnd,
  type HandoffSummary,
} from './decisions/leader';
import { leaderCandidateSignal, leaderHandoffSignal, leaderResignSignal, leaderStatusQuery, type LeaderHandoffRequest } from './definitions';

export interface LeaderState {
  epoch: number;
  leader?: LeaderInfo;
  candidates: Record<string, Candidate>;
  nextSeq: number;
  handoffs: number;
  lastHandoff?: HandoffSummary;
  lastError?: string;
}

export interface LeaderWorkflowInput {
  shard: string;
  /** Heartbeat timeout of the serve and stand-by activities: how fast a dead leader is noticed. */
  heartbeatTimeoutMs?: number;
  /** Continue-as-new after this many handoffs (history grows only with handoffs). */
  maxHandoffsPerRun?: number;
  state?: LeaderState;
}

const DEFAULT_HEARTBEAT_TIMEOUT_MS = 4_000;
const DEFAULT_MAX_HANDOFFS_PER_RUN = 100;
const MAX_HISTORY_LENGTH = 5_000;
const MOVE_TIMEOUT_MS = 30_000;

const leaderActivities = proxyActivities<LeaderActivities>({
  startToCloseTimeout: '1m',
  // Short: a worker killed while moving the ENI must not hold up the failover.
  heartbeatTimeout: '3s',
  retry: { initialInterval: '300ms', backoffCoefficient: 2, maximumInterval: '5s', maximumAttempts: 8, nonRetryableErrorTypes: ['StaleEpoch', 'AwsRequestRejected', 'ConfigInvalid'] },
});
const auditActivities = proxyActivities<Activities>({ startToCloseTimeout: '30s', retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 10 } });

interface Held {
  workerId: string;
  epoch: number;
  generation: number;
  scope: CancellationScope;
  done: Promise<void>;
  ended?: ServeEnd;
}

/**
 * The shard's leader, chosen among live workers. The leader is whoever runs the
 * serve-as-leader activity on its own task queue; every other candidate runs a
 * stand-by activity there. Both heartbeat (heartbeats are not history), so a
 * dead or partitioned worker shows up as a timeout and history grows only with
 * announcements and handoffs.
 */
export async function leaderWorkflow(input: LeaderWorkflowInput): Promise<void> {
  const shard = input.shard;
  const heartbeatTimeoutMs = input.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS;
  const maxHandoffsPerRun = input.maxHandoffsPerRun ?? DEFAULT_MAX_HANDOFFS_PER_RUN;
  const s: LeaderState = input.state ?? { epoch: 0, candidates: {}, nextSeq: 1, handoffs: 0 };
  let interfaceId: string | undefined;
  let request: LeaderHandoffRequest | undefined;
  let changed = true;
  let handoffsThisRun = 0;
  let serve: Held | undefined;
  const standbys = new Map<string, Held>();

  // So the Web UI and `terminateShardWorkflows` find it with the shard's other workflows.
  upsertSearchAttributes(searchAttributeUpdates({ NstanceShard: shard }));

  setHandler(leaderCandidateSignal, (a) => {
    const known = s.candidates[a.workerId];
    s.candidates[a.workerId] = {
      workerId: a.workerId,
      ec2InstanceId: a.ec2InstanceId ?? known?.ec2InstanceId,
      agentAddress: a.agentAddress ?? known?.agentAddress,
      seq: known?.seq ?? s.nextSeq++,
      announcedAt: a.at,
      alive: true,
      leaving: false,
      generation: (known?.generation ?? 0) + 1,
    };
    changed = true;
  });
  setHandler(leaderResignSignal, (r) => {
    const c = s.candidates[r.workerId];
    if (c && r.leaving) c.leaving = true;
    if (s.leader?.workerId === r.workerId) request = { reason: r.leaving ? 'worker-shutdown' : 'resigned', actor: `worker ${r.workerId}` };
    changed = true;
  });
  setHandler(leaderHandoffSignal, (r) => {
    request = r;
    s.lastError = undefined;
    changed = true;
  });
  setHandler(leaderStatusQuery, (): LeaderStatus => ({
    shard,
    epoch: s.epoch,
    leader: s.leader,
    candidates: Object.values(s.candidates).sort((a, b) => a.seq - b.seq),
    interfaceId,
    heartbeatTimeoutMs,
    handoffs: s.handoffs,
    lastHandoff: s.lastHandoff,
    lastError: s.lastError,
  }));

  function hold(kind: 'serve' | 'standBy', c: Candidate, epoch: number): Held {
    const acts = proxyActivities<LeaderServeActivities>({
      taskQueue: workerTaskQueue(shard, c.workerId),
      // A candidate that never picks its task up is dead (or its queue is not polled).
      scheduleToStartTimeout: heartbeatTimeoutMs * 2,
      startToCloseTimeout: '3650d',
      heartbeatTimeout: heartbeatTimeoutMs,
      retry: { maximumAttempts: 1 },
      // Graceful handoff waits until the old leader confirms it stopped serving.
      cancellationType: kind === 'serve' ? ActivityCancellationType.WAIT_CANCELLATION_COMPLETED : ActivityCancellationType.TRY_CANCEL,
    });
    const scope = new CancellationScope();
    const held: Held = { workerId: c.workerId, epoch, generation: c.generation, scope, done: Promise.resolve() };
    const args = { shard, workerId: c.workerId, epoch, heartbeatTimeoutMs };
    held.done = scope
      .run(() => (kind === 'serve' ? acts.serveAsLeader(args) : acts.standBy(args)))
      .then(
        () => void (held.ended = { kind: 'completed' }),
        (err: unknown) => void (held.ended = serveEnd(err)),
      );
    return held;
  }

  /** A stand-by for every live candidate that does not lead; none for the leader or leavers. */
  function syncStandbys(): void {
    for (const [id, h] of standbys) {
      const c = s.candidates[id];
      if (h.ended) {
        standbys.delete(id);
        if (c && !stillAliveAfter(h.ended) && c.generation === h.generation) {
          c.alive = false;
          c.lostAt = new Date().toISOString();
        }
      } else if (!c || c.leaving || s.leader?.workerId === id) {
        h.scope.cancel();
        standbys.delete(id);
      }
    }
    for (const c of Object.values(s.candidates)) {
      if (eligible(c) && s.leader?.workerId !== c.workerId && !standbys.has(c.workerId)) standbys.set(c.workerId, hold('standBy', c, s.epoch));
    }
  }

  async function handOff(previous: LeaderInfo | undefined, next: Candidate, reason: HandoffReason, detectedAt: string, actor: string): Promise<void> {
    s.epoch += 1;
    const epoch = s.epoch;
    s.leader = { workerId: next.workerId, ec2InstanceId: next.ec2InstanceId, agentAddress: next.agentAddress, epoch, since: new Date().toISOString() };
    serve = hold('serve', next, epoch);
    syncStandbys();
    const summary: HandoffSummary = { from: previous?.workerId, to: next.workerId, epoch, reason, detectedAt };
    try {
      interfaceId = (await leaderActivities.loadLeaderNetwork(shard)).interfaceId;
      if (interfaceId && next.ec2InstanceId) {
        const moved = await leaderActivities.moveLeaderNetwork({ interfaceId, instanceId: next.ec2InstanceId, epoch, workerId: next.workerId, timeoutMs: MOVE_TIMEOUT_MS });
        summary.attachedAt = moved.attachedAt;
        summary.inUseRetries = moved.inUseRetries;
        summary.durationMs = Date.parse(moved.attachedAt) - Date.parse(detectedAt);
      } else if (interfaceId) {
        summary.error = `worker ${next.workerId} announced no EC2 instance id: leader network not moved`;
      }
      await leaderActivities.writeLeaderRecord({ shard, epoch, workerId: next.workerId, ec2InstanceId: next.ec2InstanceId, agentAddress: next.agentAddress, since: s.leader.since });
    } catch (err) {
      summary.error = errorMessage(err);
      log.warn('leader handoff incomplete', { shard, epoch, error: summary.error });
    }
    s.lastError = summary.error;
    s.lastHandoff = summary;
    s.handoffs += 1;
    handoffsThisRun += 1;
    await auditActivities.writeAudit({
      shard,
      action: 'leader-handoff',
      actor,
      at: new Date().toISOString(),
      workflowId: workflowInfo().workflowId,
      details: { oldLeader: previous?.workerId ?? null, oldEpoch: previous?.epoch ?? null, oldInstance: previous?.ec2InstanceId ?? null, newLeader: next.workerId, newInstance: next.ec2InstanceId ?? null, interfaceId: interfaceId ?? null, ...summary },
    });
  }

  // A continued run: the leader keeps its epoch; its serve activity is restarted, and the
  // worker's gate passes from the old activity to the new one without a gap.
  if (s.leader) {
    const c = s.candidates[s.leader.workerId];
    if (c) serve = hold('serve', c, s.leader.epoch);
    else s.leader = undefined;
  }
  let excluded: string[] = [];
  let lost: { previous: LeaderInfo; reason: HandoffReason; at: string } | undefined;

  for (;;) {
    if (!s.leader) {
      const wanted = request?.to;
      const next = chooseNextLeader({ candidates: Object.values(s.candidates), exclude: excluded, preferred: wanted });
      if (!next) {
        changed = false;
        await condition(() => changed);
        continue;
      }
      const why = lost?.reason ?? (s.epoch === 0 ? 'initial' : 'requested');
      const actor = request?.actor ?? 'leader-workflow';
      request = undefined;
      await handOff(lost?.previous, next, why, lost?.at ?? new Date().toISOString(), actor);
      lost = undefined;
      excluded = [];
    } else {
      syncStandbys();
      changed = false;
      await condition(() => changed || request !== undefined || serve?.ended !== undefined || [...standbys.values()].some((h) => h.ended));
      const current = s.leader;
      if (serve?.ended) {
        const end = serve.ended;
        const c = s.candidates[current.workerId];
        if (c && !stillAliveAfter(end) && end.failureType !== 'LeaseLost' && c.generation === serve.generation) {
          c.alive = false;
          c.lostAt = new Date().toISOString();
        }
        if (c && end.failureType === 'WorkerShutdown') c.leaving = true;
        log.info('leader lost', { shard, worker: current.workerId, epoch: current.epoch, end });
        lost = { previous: current, reason: reasonForEnd(end), at: new Date().toISOString() };
        excluded = [current.workerId];
        s.leader = undefined;
        serve = undefined;
      } else if (request) {
        const target = request.to ? s.candidates[request.to] : chooseNextLeader({ candidates: Object.values(s.candidates), exclude: [current.workerId] });
        if (!target || !eligible(target) || target.workerId === current.workerId) {
          s.lastError = `handoff: no other live candidate${request.to ? ` named ${request.to}` : ''}`;
          // A leader that is shutting down steps down anyway; anything else keeps the current leader.
          if (request.reason !== 'worker-shutdown') {
            request = undefined;
            continue;
          }
        }
        const detectedAt = new Date().toISOString();
        // Fencing on a graceful handoff: the old leader must stop serving before anything moves.
        serve?.scope.cancel();
        await serve?.done;
        serve = undefined;
        lost = { previous: current, reason: request.reason === 'worker-shutdown' ? 'worker-shutdown' : request.reason === 'resigned' ? 'resigned' : 'requested', at: detectedAt };
        excluded = [current.workerId];
        s.leader = undefined;
        // `request` stays set: the top of the loop reads its `to` and actor.
      }
    }
    if (shouldContinueAsNew({ handoffsThisRun, maxHandoffsPerRun, historyLength: workflowInfo().historyLength, maxHistoryLength: MAX_HISTORY_LENGTH, suggested: workflowInfo().continueAsNewSuggested }) && s.leader && !request) {
      await condition(allHandlersFinished);
      // Pending activities are left running: the next run restarts them at the same epoch.
      await continueAsNew<typeof leaderWorkflow>({ shard, heartbeatTimeoutMs, maxHandoffsPerRun, state: s });
    }
  }
}

function serveEnd(err: unknown): ServeEnd {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof CancelledFailure) return { kind: 'cancelled' };
  if (cause instanceof TimeoutFailure) return { kind: 'timeout', timeoutType: String(cause.timeoutType) };
  if (cause instanceof ApplicationFailure) return { kind: 'failed', failureType: cause.type ?? undefined };
  return { kind: 'failed' };
}

function errorMessage(err: unknown): string {
  const cause = err instanceof ActivityFailure && err.cause ? err.cause : err;
  return cause instanceof Error ? cause.message : String(cause);
}
