/**
 * The agent API: HTTPS (TLS 1.3 only) on the shard leader. Its server certificate
 * is issued by the cluster CA for the leader network IP and this host's names,
 * so agents verify it with the CA from their userdata. Every request consults
 * the LeadershipGate: a worker that is not (or no longer) the leader answers 503,
 * and one deposed while serving a request stops before its next write (LeaderFence).
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import { instanceWorkflowId } from '../../common/names';
import { instanceHealthSignal, type HealthTransition } from '../../workflows/definitions';
import type { AwsClients } from '../../adapters/aws/clients';
import type { PkiCache } from '../../adapters/pki/cluster-ca';
import { NotLeaderError, type LeadershipGate, type LeadershipState } from '../leadership/gate';
import type { ShardConfigCaches } from '../../adapters/s3/config-cache';
import { AgentApiContext } from './context';
import { abandonment, leaderFence } from './fence';
import { HealthTracker } from './health-tracker';
import { HttpError, readJsonBody, sendJson } from './http';
import { ConcurrencyLimit, OverloadedError, RejectionLimiter, type ConcurrencyLimits, type RejectionLimits } from './limits';
import { authenticate, files, health, submitKeys } from './mtls';
import { register } from './register';
import { registeredInstances } from './registered-instances';
import { requestLifetime, RouteStats } from './request-lifetime';
import { requireLiveInstance } from './live-instances';
import { renew } from './renew';
import { serverCertificate, type ServerTls } from './server-cert';

export interface AgentApiListenOptions {
  port: number;
  host: string;
  /** Extra DNS names / IPs for the server certificate (the leader IP, loopback and hostname are always in). */
  serverNames?: string[];
  /** Called once the server listens (tests use it to learn the port when `port` is 0). */
  onReady?: (api: AgentApi) => void;
  /**
   * How long a "still running" answer about an instance's workflow is cached (default 30 s): the
   * longest a terminated instance's certificate can still fetch files.
   */
  instanceCheckTtlMs?: number;
  /** Lifetime of agent client certificates (default 90 days); agents renew them in the last third. */
  clientCertValidityDays?: number;
  /** How long a group's secret files are served from memory (default 30 s; Nstance's cache_ttl will set it). */
  secretFilesTtlMs?: number;
  /** Per remote address: how many rejected requests before it is answered 429 outright. */
  rejectionLimits?: RejectionLimits;
  /** Health and files requests in flight and queued at most; past it, 503 with Retry-After. */
  concurrency?: ConcurrencyLimits;
  /**
   * Registrations, which wait on S3 and Temporal, have their own (smaller) bound, so a burst of
   * them queues without delaying the health reports of the agents already registered.
   */
  registrationConcurrency?: ConcurrencyLimits;
  /** How long a request may take from arrival before it is given up and answered 503 (default REQUEST_DEADLINE_MS, 12 s). */
  requestDeadlineMs?: number;
  /** The clock certificate files are issued and reissued by (default the API's clock; tests move it on to see a reissue). */
  certificateFilesNow?: () => number;
  /** Rejections are audited as one summary per (action, reason) per window of this length (default 60 s). */
  rejectionWindowMs?: number;
  /** Summary objects per window at most (default 20). */
  maxRejectionObjectsPerWindow?: number;
}

export interface AgentApiOptions extends AgentApiListenOptions {
  client: Client;
  aws: AwsClients;
  bucket: string;
  shard: string;
  workerId: string;
  gate: LeadershipGate;
  pki?: PkiCache;
  /** The worker's config caches, shared with the nonce issuer. */
  configs?: ShardConfigCaches;
  log?: (line: string) => void;
  now?: () => number;
}

const SERVER_CERT_DAYS = 30;
/** Well inside the validity, so a long-running leader never serves an expired certificate. */
const SERVER_CERT_ROTATE_MS = 7 * 24 * 3600 * 1000;

export class AgentApi {
  readonly context: AgentApiContext;
  readonly tracker: HealthTracker;
  readonly limiter: RejectionLimiter;
  readonly concurrency: ConcurrencyLimit;
  readonly registrations: ConcurrencyLimit;
  readonly registrationStats: RouteStats;
  private server: Server | undefined;
  private closed = false;
  private unsubscribe: (() => void) | undefined;
  private rotation: NodeJS.Timeout | undefined;
  /** The leadership the tracker's memory belongs to. */
  private leadership: { epoch: number | undefined } | undefined;
  /** The latest seeding of the tracker (tests await it). */
  seeding: Promise<void> = Promise.resolve();

  constructor(private readonly options: AgentApiOptions) {
    const log = options.log ?? (() => undefined);
    this.context = new AgentApiContext({ ...options, log, now: options.now ?? Date.now });
    this.tracker = new HealthTracker({
      intervalMs: () => this.context.healthIntervalMs,
      now: options.now,
      notify: (t) => this.signalHealth(t),
      onError: (err, t) => log(`agent API: could not signal ${t.status} for ${t.instanceId} (will retry): ${(err as Error).message}`),
    });
    this.context.tracker = this.tracker;
    this.limiter = new RejectionLimiter(options.rejectionLimits, options.now);
    this.concurrency = new ConcurrencyLimit({ maxInFlight: 256, maxQueued: 4096, maxQueueWaitMs: 5000, ...options.concurrency });
    // A queued registration is shed well before the agent's 15 s timeout, so the agent hears 503 and backs off instead of timing out.
    this.registrations = new ConcurrencyLimit({ maxInFlight: 32, maxQueued: 1024, maxQueueWaitMs: 5000, ...options.registrationConcurrency });
    this.registrationStats = new RouteStats('POST /v1/register', {
      log,
      extra: () => `${this.registrations.inFlight} in flight, ${this.registrations.queued} queued, ${this.registrations.shed} shed since start`,
    });
  }

  /** Where it listens; undefined before start() resolves. */
  get address(): { host: string; port: number } | undefined {
    const a = this.server?.address() as AddressInfo | null | undefined;
    return a ? { host: a.address, port: a.port } : undefined;
  }

  /** Waits for the shard's config (the CA is named there), then listens. */
  async start(): Promise<{ host: string; port: number }> {
    const log = this.context.deps.log;
    let waited = false;
    while (!(await this.context.view().catch(() => undefined))) {
      if (this.closed) throw new Error('agent API closed before it started');
      if (!waited) log(`agent API: waiting for shard ${this.options.shard}'s config before creating the CA`);
      waited = true;
      await new Promise((r) => setTimeout(r, 2000));
    }
    const tls = await this.serverCertificate();
    const server = createServer({ ...tls, minVersion: 'TLSv1.3', requestCert: true, rejectUnauthorized: false }, (req, res) => {
      void this.handle(req, res);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host, () => resolve());
    });
    if (this.closed) {
      server.close();
      throw new Error('agent API closed before it started');
    }
    this.server = server;
    this.unsubscribe = this.options.gate.onChange((state) => this.followLeadership(state));
    this.followLeadership(this.options.gate.state);
    this.tracker.start();
    this.context.rejections.start();
    this.registrationStats.start();
    this.scheduleRotation();
    const address = this.address as { host: string; port: number };
    log(`agent API listening on https://${address.host}:${address.port} (TLS 1.3, client certificates from the cluster CA)`);
    this.options.onReady?.(this);
    return address;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.tracker.stop();
    this.registrationStats.stop();
    this.unsubscribe?.();
    if (this.rotation) clearTimeout(this.rotation);
    const server = this.server;
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    // What was refused since the last summary is still written.
    await this.context.rejections.close();
  }

  /**
   * A worker that gains leadership starts from fresh memory (it never saw the reports
   * the old leader got), then seeds it with the instances that should be reporting,
   * so an agent that stays silent towards the new leader is still found.
   */
  private followLeadership(state: LeadershipState): void {
    if (!state.leader || this.closed) return;
    // The same leadership again (the leader workflow continued as new and restarted its activity): keep the memory.
    if (this.leadership && this.leadership.epoch === state.epoch) return;
    const lease = { epoch: state.epoch };
    this.leadership = lease;
    this.tracker.reset();
    this.seeding = this.seedTracker(lease);
  }

  /**
   * Expects a report from each of the shard's registered instances from now on: one
   * that never reports to this leader is unhealthy after the missed-interval limit.
   * Retried until it works or the leadership it was started for is over.
   */
  private async seedTracker(lease: { epoch: number | undefined }): Promise<void> {
    const { log, now } = this.context.deps;
    const since = now();
    const current = () => !this.closed && this.leadership === lease && this.options.gate.state.leader;
    for (let attempt = 1; current(); attempt++) {
      try {
        const ids = await registeredInstances(this.options.client, this.options.shard);
        if (!current()) return;
        const added = this.tracker.seed(ids, since);
        log(`agent API: leading at epoch ${lease.epoch ?? '-'}: expecting health reports from ${ids.length} registered instance(s), ${added} not yet heard from`);
        return;
      } catch (err) {
        log(`agent API: could not list the shard's registered instances to watch their health (retrying): ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, Math.min(30_000, 1000 * 2 ** Math.min(attempt - 1, 5))).unref());
      }
    }
  }

  private scheduleRotation(): void {
    this.rotation = setTimeout(() => {
      this.serverCertificate()
        .then((tls) => this.server?.setSecureContext({ ...tls, minVersion: 'TLSv1.3' }))
        .catch((err: Error) => this.context.deps.log(`agent API: server certificate rotation failed (will retry): ${err.message}`))
        .finally(() => {
          if (!this.closed) this.scheduleRotation();
        });
    }, SERVER_CERT_ROTATE_MS);
    this.rotation.unref();
  }

  private serverCertificate(): Promise<ServerTls> {
    return serverCertificate(this.context, { shard: this.options.shard, workerId: this.options.workerId, host: this.options.host, serverNames: this.options.serverNames, validityDays: SERVER_CERT_DAYS });
  }

  /**
   * Order: a worker that does not lead answers 503 before anything else, so an agent always
   * learns to move to the leader (never a 429 Retry-After from a server that cannot serve it);
   * then a remote that keeps being refused is answered 429; then a slot (or a place in the
   * bounded queue) is taken; then the leadership again (fenced) and the route. The
   * body is read only once the request has its slot, so one whose agent hung up while it
   * waited fails there, before any lookup or write. From arrival the request has a lifetime
   * (requestLifetime): past its deadline, or once its agent hangs up, it stops at its next step
   * and its AWS and Temporal calls are aborted.
   */
  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.options.gate.state.leader) return sendJson(res, 503, { error: 'not-leader', message: `${this.options.workerId} is not the leader: retry against the leader network address` });
    const address = req.socket.remoteAddress ?? 'unknown';
    const remote = `${address}:${req.socket.remotePort}`;
    const blockedMs = this.limiter.blockedFor(address);
    if (blockedMs !== undefined) {
      this.context.reject({ action: 'agent.rate-limited', reason: 'too-many-rejections', remote });
      return sendJson(res, 429, { error: 'too-many-rejections', message: `too many refused requests from ${address}: try again later` }, retryAfter(blockedMs));
    }
    const route = `${req.method} ${(req.url ?? '').split('?')[0]}`;
    const arrived = Date.now();
    const lifetime = requestLifetime(req, res, this.options.requestDeadlineMs);
    let release: (() => void) | undefined;
    try {
      release = await (route === 'POST /v1/register' ? this.registrations : this.concurrency).acquire();
    } catch (err) {
      lifetime.end();
      if (!(err instanceof OverloadedError)) throw err;
      return sendJson(res, 503, { error: 'busy', message: `${err.message}: retry later` }, retryAfter(err.retryAfterMs));
    }
    let outcome: 'answered' | 'deadline' | 'hung-up' = 'answered';
    try {
      // The leadership this request is served under, and its lifetime: every write it makes re-checks both.
      const fence = leaderFence(this.options.gate, lifetime.signal);
      switch (route) {
        case 'POST /v1/register':
          return sendJson(res, 200, await register(this.context, fence, () => readJsonBody(req), remote));
        case 'POST /v1/health': {
          const who = authenticate(this.context, req, '/v1/health');
          // A terminated instance's certificate is refused on every mTLS endpoint (files checks it itself).
          await requireLiveInstance(this.context, who, '/v1/health', remote);
          return sendJson(res, 200, await health(this.context, fence, who, await readJsonBody(req), remote));
        }
        case 'GET /v1/files': {
          const who = authenticate(this.context, req, '/v1/files');
          return sendJson(res, 200, await files(this.context, fence, who, remote));
        }
        case 'POST /v1/keys': {
          const who = authenticate(this.context, req, '/v1/keys');
          await requireLiveInstance(this.context, who, '/v1/keys', remote);
          return sendJson(res, 200, await submitKeys(this.context, who, await readJsonBody(req), remote));
        }
        case 'POST /v1/renew': {
          const who = authenticate(this.context, req, '/v1/renew');
          await requireLiveInstance(this.context, who, '/v1/renew', remote);
          return sendJson(res, 200, await renew(this.context, fence, who, req, await readJsonBody(req), remote));
        }
        default:
          throw new HttpError(404, 'not-found', `no route ${route}`);
      }
    } catch (err) {
      // Whatever failed (an aborted S3 or Temporal call surfaces as its own error), the cause is the abandonment.
      if (lifetime.signal.aborted) {
        const abandoned = abandonment(lifetime.signal);
        outcome = abandoned.reason;
        // Hung up: nobody is left to answer. Past the deadline: the agent still listens, and asks again.
        if (abandoned.reason === 'hung-up') return;
        return sendJson(res, 503, { error: 'deadline', message: `${abandoned.message}: retry later` }, retryAfter(1000));
      }
      if (err instanceof NotLeaderError) return sendJson(res, 503, { error: 'not-leader', message: `${err.message}: retry against the leader network address` });
      if (err instanceof HttpError) {
        // Refusals spend the remote's budget; a 5xx is our failure, not the peer's.
        if (err.status >= 400 && err.status < 500) this.limiter.rejected(address);
        return sendJson(res, err.status, { error: err.code, message: err.message });
      }
      this.context.deps.log(`agent API: ${req.method} ${req.url} from ${remote} failed: ${(err as Error).message}`);
      return sendJson(res, 500, { error: 'internal', message: 'internal error; retry' });
    } finally {
      release();
      lifetime.end();
      if (route === 'POST /v1/register') this.registrationStats.record(Date.now() - arrived, outcome);
    }
  }

  private async signalHealth(t: HealthTransition): Promise<'ok' | 'gone'> {
    // Only the leader speaks for agents; a deposed worker's stale view must not reach workflows.
    const { leader, epoch } = this.options.gate.state;
    if (!leader) return 'ok';
    try {
      // Stamped, so a workflow that already heard from a newer leader ignores it should this worker be deposed meanwhile.
      const stamped: HealthTransition = { ...t, leaderEpoch: epoch };
      await this.options.client.workflow.getHandle(instanceWorkflowId(this.options.shard, t.instanceId)).signal(instanceHealthSignal, stamped);
      return 'ok';
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return 'gone';
      throw err;
    }
  }
}

function retryAfter(ms: number): Record<string, string> {
  return { 'retry-after': String(Math.max(1, Math.ceil(ms / 1000))) };
}
