/**
 * A worker's part in shard leadership: it polls its own task queue (where the
 * leader workflow runs serve-as-leader or stand-by for it), announces itself as
 * a candidate with signalWithStart (which starts the singleton workflow if it is
 * not running), serves the leader-fenced status endpoint, and on shutdown hands
 * leadership over before it stops.
 */
import type { Client } from '@temporalio/client';
import { Runtime, Worker, type NativeConnection } from '@temporalio/worker';
import { createLeaderServeActivities, type LostReason } from '../../activities/leader-serve';
import { parseDuration } from '../../common/duration';
import { leaderWorkflowId, shardTaskQueue, workerTaskQueue } from '../../common/names';
import { leaderRunMetadata } from '../../common/run-summaries';
import { handoverOutcome, type HandoverOutcome } from '../../workflows/decisions/leader';
import { leaderCandidateSignal, leaderResignSignal, leaderStatusQuery, type CandidateAnnouncement } from '../../workflows/definitions';
import type { leaderWorkflow } from '../../workflows/leader';
import { MutableLeadershipGate } from './gate';
import { startStatusServer, type StatusServer } from './status-server';
import { nstanceDataConverter } from '../../adapters/temporal/data-converter';

export interface LeadershipOptions {
  ec2InstanceId?: string;
  /** Announced to the workflow; defaults to the status endpoint's address. */
  agentAddress?: string;
  /** Port of the status endpoint; undefined: none. */
  statusPort?: number;
  statusHost?: string;
  heartbeatTimeoutMs: number;
  maxHandoffsPerRun?: number;
  /** How long a leader waits for its handoff on shutdown before stopping anyway. */
  resignTimeoutMs?: number;
}

/** Leadership settings from the environment; undefined when NSTANCE_LEADERSHIP=off. */
export function leadershipFromEnv(env: NodeJS.ProcessEnv = process.env): LeadershipOptions | undefined {
  if (env.NSTANCE_LEADERSHIP === 'off') return undefined;
  const port = env.NSTANCE_AGENT_STATUS_PORT;
  if (port !== undefined && !/^\d+$/.test(port)) throw new Error(`NSTANCE_AGENT_STATUS_PORT must be a port number, not "${port}"`);
  const maxHandoffs = env.NSTANCE_LEADER_MAX_HANDOFFS_PER_RUN;
  return {
    ec2InstanceId: env.NSTANCE_EC2_INSTANCE_ID || undefined,
    agentAddress: env.NSTANCE_AGENT_ADDRESS || undefined,
    statusPort: port === undefined ? undefined : Number(port),
    statusHost: env.NSTANCE_AGENT_STATUS_HOST || undefined,
    heartbeatTimeoutMs: parseDuration(env.NSTANCE_LEADER_HEARTBEAT_TIMEOUT || '4s'),
    maxHandoffsPerRun: maxHandoffs ? Number(maxHandoffs) : undefined,
  };
}

export interface ParticipantInit {
  connection: NativeConnection;
  client: Client;
  namespace: string;
  shard: string;
  workerId: string;
  options: LeadershipOptions;
  log?: (line: string) => void;
}

export class LeadershipParticipant {
  readonly gate = new MutableLeadershipGate();
  private worker?: Worker;
  private status?: StatusServer;
  private stopping = false;
  private announcing?: Promise<void>;
  private readonly log: (line: string) => void;
  /** Serve and stand-by activities running here now; a live candidate always has one. */
  private activities = 0;
  private idleSince = Date.now();
  private watchdog?: NodeJS.Timeout;

  constructor(private readonly init: ParticipantInit) {
    this.log = init.log ?? (() => undefined);
  }

  get statusAddress(): string | undefined {
    return this.status?.address;
  }

  async start(): Promise<void> {
    const { init } = this;
    if (init.options.statusPort !== undefined) {
      this.status = await startStatusServer({ gate: this.gate, shard: init.shard, workerId: init.workerId, port: init.options.statusPort, host: init.options.statusHost });
    }
    this.worker = await Worker.create({
      connection: init.connection,
      namespace: init.namespace,
      taskQueue: workerTaskQueue(init.shard, init.workerId),
      identity: `nstance-worker/${init.workerId}/leadership`,
      dataConverter: nstanceDataConverter(),
      activities: createLeaderServeActivities({
        gate: this.gate,
        client: init.client,
        workerId: init.workerId,
        log: this.log,
        onDropped: (why) => this.dropped(why),
        onActivity: () => {
          this.activities++;
          let done = false;
          return () => {
            if (done) return;
            done = true;
            if (--this.activities === 0) this.idleSince = Date.now();
          };
        },
      }),
      shutdownGraceTime: '2s',
    });
    this.gate.onChange((s) => this.log(`leadership: ${s.leader ? `LEADER at epoch ${s.epoch}` : `not leader (last epoch ${s.epoch ?? '-'})`}`));
  }

  /** Polls the worker's own queue and announces it; resolves when the worker stops. */
  async run(): Promise<void> {
    if (!this.worker) throw new Error('LeadershipParticipant.start() first');
    const running = this.worker.run();
    await this.announce();
    this.startWatchdog();
    try {
      await running;
    } finally {
      clearInterval(this.watchdog);
    }
  }

  /**
   * The workflow runs serve-as-leader or stand-by for every live candidate, so a
   * running worker with neither for a while has been dropped (marked lost, or its
   * activity ended in a way nobody reported). It announces itself again, so a
   * worker that is the only (or earliest) live candidate leads again: a shard must
   * not stay leaderless because its one worker was once counted as lost.
   */
  private startWatchdog(): void {
    const { heartbeatTimeoutMs } = this.init.options;
    // Longer than the workflow's schedule-to-start timeout (2 × heartbeat timeout), so a
    // freshly announced worker gets its activity before this counts it as dropped.
    const idleLimitMs = heartbeatTimeoutMs * 3;
    this.idleSince = Date.now();
    this.watchdog = setInterval(() => {
      if (this.stopping || this.activities > 0 || this.announcing) return;
      if (Date.now() - this.idleSince < idleLimitMs) return;
      this.log(`leadership: no serve or stand-by activity for ${Date.now() - this.idleSince} ms: announcing again`);
      this.idleSince = Date.now();
      void this.announce().then(() => (this.idleSince = Date.now()));
    }, Math.max(500, Math.floor(heartbeatTimeoutMs / 2)));
    this.watchdog.unref();
  }

  /**
   * Temporal no longer knows one of this worker's activities. Usually the workflow timed
   * it out, and the worker must announce itself again to be a candidate. But "not found"
   * also comes after a continue-as-new (the old run's activities are gone while the new
   * run has already restarted them here) and after a terminate. A needless re-announce is
   * not harmless: it bumps the candidate's generation, and the workflow ignores a timeout
   * of an activity started for an older generation (that is what keeps a stale timeout from
   * marking a re-announced worker dead), so the next real death of this worker would go
   * unnoticed for another schedule-to-start timeout (2 × heartbeat timeout) and it could be
   * chosen as leader meanwhile. So, for the "not found" reasons, wait as long as the
   * workflow gives an activity to be picked up (its schedule-to-start timeout, 2 × heartbeat
   * timeout: a busy workflow may start the new run's activity well after the old one ended)
   * and re-announce only if none arrived.
   *
   * Why here and not in the workflow (not bumping the generation of a live candidate):
   * only the worker knows whether it still has a live activity; the workflow cannot tell a
   * restarted process of the same worker id (whose old activities will time out later and
   * must not count) from a spurious re-announce. The watchdog still backs this up.
   */
  private dropped(why: LostReason): void {
    if (why !== 'stand-by-dropped' && why !== 'not-found') {
      this.log(`leadership: ${why}: announcing again`);
      void this.announce();
      return;
    }
    const timer = setTimeout(() => {
      if (this.stopping) return;
      if (this.activities > 0) return this.log(`leadership: ${why}, but a newer serve or stand-by activity runs here: not announcing again`);
      this.log(`leadership: ${why}: announcing again`);
      void this.announce();
    }, this.init.options.heartbeatTimeoutMs * 2);
    timer.unref();
  }

  /** signalWithStart, retried until it lands: a partitioned worker re-announces once it can. */
  announce(): Promise<void> {
    this.announcing ??= (async () => {
      const { init } = this;
      for (let delay = 250; !this.stopping; delay = Math.min(delay * 2, 5_000)) {
        try {
          await init.client.workflow.signalWithStart<typeof leaderWorkflow, [CandidateAnnouncement]>('leaderWorkflow', {
            workflowId: leaderWorkflowId(init.shard),
            taskQueue: shardTaskQueue(init.shard),
            args: [{ shard: init.shard, heartbeatTimeoutMs: init.options.heartbeatTimeoutMs, maxHandoffsPerRun: init.options.maxHandoffsPerRun }],
            ...leaderRunMetadata(init.shard, init.options.heartbeatTimeoutMs),
            signal: leaderCandidateSignal,
            signalArgs: [{ workerId: init.workerId, ec2InstanceId: init.options.ec2InstanceId, agentAddress: init.options.agentAddress ?? this.status?.address, at: new Date().toISOString() }],
          });
          this.log(`leadership: announced as candidate (instance ${init.options.ec2InstanceId ?? '-'})`);
          return;
        } catch (err) {
          this.log(`leadership: announce failed (${(err as Error).message}); retrying in ${delay} ms`);
          await new Promise((r) => setTimeout(r, delay));
        }
      }
    })().finally(() => (this.announcing = undefined));
    return this.announcing;
  }

  /**
   * Graceful exit: tell the workflow this worker is leaving; if it leads, wait until the
   * workflow reports the handover finished (another worker leads at a newer epoch and
   * that handoff's ENI move is done or failed, see `handoverOutcome`), bounded by
   * resignTimeoutMs. Waiting only for this worker to stop serving would let the process
   * exit while the ENI is still on its way, with no server answering agents.
   */
  async resign(reason = 'shutdown'): Promise<void> {
    this.stopping = true;
    const { init } = this;
    const led = this.gate.state;
    try {
      await init.client.workflow.getHandle(leaderWorkflowId(init.shard)).signal(leaderResignSignal, { workerId: init.workerId, leaving: true, reason });
    } catch (err) {
      this.log(`leadership: could not resign (${(err as Error).message})`);
    }
    if (!led.leader) return this.log('leadership: resigned (not leading)');
    const timeoutMs = init.options.resignTimeoutMs ?? init.options.heartbeatTimeoutMs * 4;
    const outcome = await this.waitForHandover(led.epoch ?? 0, Date.now() + timeoutMs);
    if (!outcome.done) return this.log(`leadership: resigned, but the handoff did not finish within ${timeoutMs} ms (${this.gate.state.leader ? 'still serving' : 'stopped serving'})`);
    if (!outcome.to) return this.log(`leadership: resigned with nobody to hand over to (${outcome.error ?? ''})`);
    this.log(`leadership: resigned: ${outcome.to} leads at epoch ${outcome.epoch}${outcome.error ? `, but its handoff failed: ${outcome.error}` : ''}`);
  }

  private async waitForHandover(ownEpoch: number, deadline: number): Promise<HandoverOutcome> {
    const handle = this.init.client.workflow.getHandle(leaderWorkflowId(this.init.shard));
    while (Date.now() < deadline) {
      try {
        // Bounded per query too: a query waits for a workflow task, which must not outlast the resign timeout.
        const status = await this.init.client.withDeadline(Math.min(deadline, Date.now() + 2_000), () => handle.query(leaderStatusQuery));
        const outcome = handoverOutcome(status, this.init.workerId, ownEpoch);
        if (outcome.done) return outcome;
      } catch {
        // A query can fail while the workflow continues as new or its task is in flight: ask again.
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    return { done: false };
  }

  async shutdown(): Promise<void> {
    this.stopping = true;
    clearInterval(this.watchdog);
    if (this.worker && this.worker.getState() === 'RUNNING') this.worker.shutdown();
    await this.status?.close();
  }
}

/**
 * The process handles SIGTERM/SIGINT itself (a leader hands over before its
 * workers stop), so the SDK runtime must not install its own handlers. Must run
 * before the first Temporal connection is made.
 */
export function installRuntimeWithoutSignalHandlers(): void {
  try {
    Runtime.install({ shutdownSignals: [] });
  } catch {
    // Already installed by the embedding process: it owns signal handling then.
  }
}

/** A workflow bundle prepared once (tests share one across worker processes); else bundle from source. */
export function workflowBundleFromEnv(env: NodeJS.ProcessEnv = process.env): { codePath: string } | undefined {
  return env.NSTANCE_WORKFLOW_BUNDLE ? { codePath: env.NSTANCE_WORKFLOW_BUNDLE } : undefined;
}

/**
 * Runs the shard worker and the participant until a signal: on SIGTERM/SIGINT
 * the participant resigns first (if it leads, the workflow hands over and it
 * stops serving), then both workers shut down gracefully.
 */
export async function runWithLeadership(worker: Worker, participant: LeadershipParticipant, log: (line: string) => void): Promise<void> {
  let stopping: Promise<void> | undefined;
  const stop = (signal: string) => {
    stopping ??= (async () => {
      log(`${signal}: handing over leadership before exit`);
      await participant.resign();
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await participant.shutdown();
    })();
  };
  const onTerm = () => stop('SIGTERM');
  const onInt = () => stop('SIGINT');
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  try {
    await Promise.all([
      worker.run(),
      participant.run().catch(async (err: unknown) => {
        // Without its own queue the worker cannot lead; keep failures loud, not silent.
        if (worker.getState() === 'RUNNING') worker.shutdown();
        throw err;
      }),
    ]);
  } finally {
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onInt);
    await stopping;
  }
}
