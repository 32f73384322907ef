import { allHandlersFinished, CancellationScope, condition, continueAsNew, log, patched, setCurrentDetails, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { MoveResult } from '../adapters/ec2/network-interfaces';
import { searchAttributeUpdates } from '../common/search-attributes';
import {
  chooseNextLeader,
  eligible,
  nextRepair,
  reasonForEnd,
  shouldContinueAsNew,
  startingEpoch,
  stillAliveAfter,
  type Candidate,
  type HandoffReason,
  type LeaderInfo,
  type LeaderStatus,
  type NetworkRepair,
  type HandoffSummary,
} from './decisions/leader';
import { auditActivities, epochActivities, errorMessage, holdActivity, leaderActivities, MOVE_TIMEOUT_MS, type Held, type HoldKind, type Placement } from './leader-holds';
import type { LeaderState, LeaderWorkflowInput } from './leader-state';
import { leaderCandidateSignal, leaderHandoffSignal, leaderResignSignal, leaderStatusQuery } from './definitions';
import { leaderDetails } from './current-details';

export type { LeaderState, LeaderWorkflowInput, LostLeadership } from './leader-state';

const DEFAULT_HEARTBEAT_TIMEOUT_MS = 4_000;
const DEFAULT_MAX_HANDOFFS_PER_RUN = 100;
const MAX_HISTORY_LENGTH = 5_000;

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
  const maxHistoryLength = input.maxHistoryLength ?? MAX_HISTORY_LENGTH;
  const s: LeaderState = input.state ?? { epoch: 0, candidates: {}, nextSeq: 1, handoffs: 0 };
  // A run without carried state starts over: its first election is 'initial' whatever epoch it resumes from.
  const freshRun = input.state === undefined;
  let interfaceId: string | undefined;
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
    if (s.leader?.workerId === r.workerId) s.request = { reason: r.leaving ? 'worker-shutdown' : 'resigned', actor: `worker ${r.workerId}` };
    changed = true;
  });
  setHandler(leaderHandoffSignal, (r) => {
    s.request = r;
    s.lastError = undefined;
    changed = true;
  });
  const statusNow = (): LeaderStatus => ({
    shard,
    epoch: s.epoch,
    leader: s.leader,
    candidates: Object.values(s.candidates).sort((a, b) => a.seq - b.seq),
    interfaceId,
    heartbeatTimeoutMs,
    handoffs: s.handoffs,
    lastHandoff: s.lastHandoff,
    lastError: s.lastError,
    networkRepair: s.networkRepair,
  });
  setHandler(leaderStatusQuery, statusNow);

  const hold = (kind: HoldKind, c: Candidate, epoch: number): Held => holdActivity({ shard, heartbeatTimeoutMs }, kind, c, epoch);

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

  /**
   * Puts leader `l`'s network in place: the ENI moved to its instance, then the leader
   * record. Raced against `held` (l's serve activity) ending, and for a repair against a
   * handoff request: either makes the move pointless, so it is cancelled and the loop
   * deals with the new situation at once instead of after minutes of move retries.
   */
  async function placeNetwork(l: LeaderInfo, held: Held | undefined, abandonOnRequest: boolean): Promise<Placement> {
    const work = new CancellationScope();
    const placing = work.run(async (): Promise<Placement> => {
      interfaceId = (await leaderActivities.loadLeaderNetwork(shard)).interfaceId;
      let moved: MoveResult | undefined;
      let note: string | undefined;
      if (interfaceId && l.ec2InstanceId) {
        moved = await leaderActivities.moveLeaderNetwork({ interfaceId, instanceId: l.ec2InstanceId, epoch: l.epoch, workerId: l.workerId, timeoutMs: MOVE_TIMEOUT_MS });
      } else if (interfaceId) {
        note = `worker ${l.workerId} announced no EC2 instance id: leader network not moved`;
      }
      await leaderActivities.writeLeaderRecord({ shard, epoch: l.epoch, workerId: l.workerId, ec2InstanceId: l.ec2InstanceId, agentAddress: l.agentAddress, since: l.since });
      return { kind: 'placed', moved, note };
    });
    const watch = new CancellationScope();
    const abandoned = watch
      .run(() => condition(() => held?.ended !== undefined || (abandonOnRequest && s.request !== undefined)))
      .then(
        () => true as const,
        // Cancelled below once the placement settled: nothing to report.
        () => false as const,
      );
    let first: Placement | boolean;
    try {
      first = await Promise.race([placing, abandoned]);
    } catch (err) {
      watch.cancel();
      return { kind: 'failed', error: errorMessage(err) };
    }
    watch.cancel();
    if (typeof first !== 'boolean') return first;
    // TRY_CANCEL: the move stops at its next heartbeat; a later move at a newer epoch is fenced against it anyway.
    work.cancel();
    await placing.catch(() => undefined);
    const why = held?.ended ? `leader ${l.workerId} ended (${reasonForEnd(held.ended)}) before its network was in place` : 'superseded by a handoff request';
    return { kind: 'abandoned', why };
  }

  async function handOff(previous: LeaderInfo | undefined, next: Candidate, reason: HandoffReason, detectedAt: string, actor: string): Promise<void> {
    s.epoch += 1;
    const epoch = s.epoch;
    const leader: LeaderInfo = { workerId: next.workerId, ec2InstanceId: next.ec2InstanceId, agentAddress: next.agentAddress, epoch, since: new Date().toISOString() };
    s.leader = leader;
    s.networkRepair = undefined;
    serve = hold('serve', next, epoch);
    syncStandbys();
    const summary: HandoffSummary = { from: previous?.workerId, to: next.workerId, epoch, reason, detectedAt };
    const placed = await placeNetwork(leader, serve, false);
    if (placed.kind === 'placed') {
      if (placed.moved) {
        summary.attachedAt = placed.moved.attachedAt;
        summary.inUseRetries = placed.moved.inUseRetries;
        summary.durationMs = Date.parse(placed.moved.attachedAt) - Date.parse(detectedAt);
      }
      summary.error = placed.note;
    } else {
      summary.error = placed.kind === 'failed' ? placed.error : placed.why;
      // A leader without its network is no leader for agents: keep trying while it leads.
      if (placed.kind === 'failed') s.networkRepair = nextRepair(epoch, 1, placed.error, Date.now());
      log.warn('leader handoff incomplete', { shard, epoch, error: summary.error, retrying: placed.kind === 'failed' });
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
      // durationMs runs from detection; a lost leader went silent up to one heartbeat timeout before that.
      details: { oldLeader: previous?.workerId ?? null, oldEpoch: previous?.epoch ?? null, oldInstance: previous?.ec2InstanceId ?? null, newLeader: next.workerId, newInstance: next.ec2InstanceId ?? null, interfaceId: interfaceId ?? null, heartbeatTimeoutMs, ...summary },
    });
  }

  /** Another try at the current leader's network, at the same epoch (so the fence still holds). */
  async function repairNetwork(l: LeaderInfo, r: NetworkRepair): Promise<void> {
    const placed = await placeNetwork(l, serve, true);
    // The loop now hands over (leader ended) or acts on the request; the next leader gets its own move.
    if (placed.kind === 'abandoned') return;
    if (placed.kind === 'failed') {
      s.networkRepair = nextRepair(l.epoch, r.attempts + 1, placed.error, Date.now());
      s.lastError = placed.error;
      log.warn('leader network still not in place', { shard, epoch: l.epoch, attempts: r.attempts + 1, error: placed.error });
      return;
    }
    s.networkRepair = undefined;
    s.lastError = placed.note;
    const h = s.lastHandoff;
    if (h?.epoch === l.epoch) {
      s.lastHandoff = {
        ...h,
        attachedAt: placed.moved?.attachedAt,
        inUseRetries: placed.moved?.inUseRetries,
        durationMs: placed.moved ? Date.parse(placed.moved.attachedAt) - Date.parse(h.detectedAt) : undefined,
        error: placed.note,
      };
    }
    await auditActivities.writeAudit({
      shard,
      action: 'leader-network-repaired',
      actor: 'leader-workflow',
      at: new Date().toISOString(),
      workflowId: workflowInfo().workflowId,
      details: { leader: l.workerId, epoch: l.epoch, instance: l.ec2InstanceId ?? null, interfaceId: interfaceId ?? null, attempts: r.attempts + 1, previousError: r.error, attachedAt: placed.moved?.attachedAt ?? null, inUseRetries: placed.moved?.inUseRetries ?? null },
    });
  }

  // A continued run: the leader keeps its epoch; its serve activity is restarted, and the
  // worker's gate passes from the old activity to the new one without a gap.
  if (s.leader) {
    const c = s.candidates[s.leader.workerId];
    if (c) serve = hold('serve', c, s.leader.epoch);
    else s.leader = undefined;
  }
  // A fresh run (after a terminate, a failed run, or a start once the run closed) resumes
  // from the newest epoch earlier runs left on the fenced writes; from 0 every move would
  // be refused StaleEpoch. `patched`: runs started before this read replay without it.
  if (freshRun && patched('leader-epoch-from-store')) {
    const seen = await epochActivities.readLeaderEpoch(shard);
    s.epoch = Math.max(s.epoch, startingEpoch(seen));
    if (s.epoch > 0) log.info('leader workflow resumes from an earlier epoch', { shard, epoch: s.epoch, record: seen.record, interfaceTag: seen.interfaceTag });
  }

  for (;;) {
    setCurrentDetails(leaderDetails(statusNow()));
    if (!s.leader) {
      const lost = s.lost;
      const next = chooseNextLeader({ candidates: Object.values(s.candidates), exclude: lost ? [lost.previous.workerId] : [], preferred: s.request?.to });
      if (next) {
        const why = lost?.reason ?? (freshRun && handoffsThisRun === 0 ? 'initial' : 'requested');
        const actor = s.request?.actor ?? 'leader-workflow';
        s.request = undefined;
        s.lost = undefined;
        await handOff(lost?.previous, next, why, lost?.at ?? new Date().toISOString(), actor);
      } else {
        // Nobody can lead: wait for an announcement. No `continue`: announcements grow
        // history, so this pass too must reach the continue-as-new check below.
        changed = false;
        await condition(() => changed);
      }
    } else {
      syncStandbys();
      changed = false;
      const current = s.leader;
      const repair = s.networkRepair?.epoch === current.epoch ? s.networkRepair : undefined;
      const wake = () => changed || s.request !== undefined || serve?.ended !== undefined || [...standbys.values()].some((h) => h.ended);
      let repairDue = false;
      if (repair && !wake()) {
        // A durable timer: the retry survives worker restarts; any other event is handled first.
        const waitMs = repair.nextAttemptAt - Date.now();
        repairDue = waitMs <= 0 || !(await condition(wake, waitMs));
      } else {
        await condition(wake);
      }
      if (serve?.ended) {
        const end = serve.ended;
        const c = s.candidates[current.workerId];
        if (c && !stillAliveAfter(end) && end.failureType !== 'LeaseLost' && c.generation === serve.generation) {
          c.alive = false;
          c.lostAt = new Date().toISOString();
        }
        if (c && end.failureType === 'WorkerShutdown') c.leaving = true;
        log.info('leader lost', { shard, worker: current.workerId, epoch: current.epoch, end });
        s.lost = { previous: current, reason: reasonForEnd(end), at: new Date().toISOString() };
        s.leader = undefined;
        s.networkRepair = undefined;
        serve = undefined;
      } else if (s.request) {
        const request = s.request;
        const target = request.to ? s.candidates[request.to] : chooseNextLeader({ candidates: Object.values(s.candidates), exclude: [current.workerId] });
        const refused = !target || !eligible(target) || target.workerId === current.workerId;
        if (refused) s.lastError = `handoff: no other live candidate${request.to ? ` named ${request.to}` : ''}`;
        // A leader that is shutting down steps down anyway; anything else keeps the current leader.
        if (refused && request.reason !== 'worker-shutdown') {
          s.request = undefined;
        } else {
          const detectedAt = new Date().toISOString();
          // Fencing on a graceful handoff: the old leader must stop serving before anything moves.
          serve?.scope.cancel();
          await serve?.done;
          serve = undefined;
          s.lost = { previous: current, reason: request.reason === 'worker-shutdown' ? 'worker-shutdown' : request.reason === 'resigned' ? 'resigned' : 'requested', at: detectedAt };
          s.leader = undefined;
          s.networkRepair = undefined;
          // `s.request` stays set: the leaderless pass reads its `to` and actor.
        }
      } else if (repair && repairDue) {
        await repairNetwork(current, repair);
      }
    }
    // Every pass gets here, leaderless or not. Lost leaderships, requests and a pending
    // network repair are in `s`, so a run may continue as new at any pass.
    if (shouldContinueAsNew({ handoffsThisRun, maxHandoffsPerRun, historyLength: workflowInfo().historyLength, maxHistoryLength, suggested: workflowInfo().continueAsNewSuggested })) {
      await condition(allHandlersFinished);
      // Pending activities are left running: the next run restarts them at the same epoch.
      await continueAsNew<typeof leaderWorkflow>({ shard, heartbeatTimeoutMs, maxHandoffsPerRun, maxHistoryLength: input.maxHistoryLength, state: s });
    }
  }
}
