/**
 * The Nstance agent: registers with its single-use nonce, keeps its key and
 * certificate in a state directory, then reports health every interval and
 * fetches its files over mTLS. Runs as `nstance agent` on an instance, and
 * in-process (many at once) in the simulated fleet.
 */
import { createPublicKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { peekClaims } from '../../adapters/pki/nonce';
import { discoverPinnedCa } from './discover';
import type { NoticeSource, TerminationNotice } from './imds';
import { loadOrCreateKey, loadState, saveRenewedState, saveState, type AgentState } from './state';
import { AgentRequestError, jitteredIntervalMs, retryDelayMs } from './retry';
import { AgentTransport } from './transport';
import { splitAddress } from './userdata';
import { filesReport, heldManifest } from './held-files';
import { WrittenFiles } from './written-files';
import { fetchAndWriteFiles, type DeliveredFile } from './fetch-files';

export { AgentRequestError, jitteredIntervalMs, retryDelayMs, RETRY_BASE_MS, RETRY_MAX_MS } from './retry';
export type { DeliveredFile } from './fetch-files';

export interface HealthReportBody {
  status: 'healthy' | 'unhealthy';
  reason?: string;
  terminationNotice?: TerminationNotice;
}

export interface AgentOptions {
  /** The registration address from userdata (the leader network IP): the server certificate must name its host. */
  registerAddress: string;
  /** Where to dial, when it differs from registerAddress (the simulated fleet runs on loopback). */
  connectAddress?: string;
  /**
   * The source address to dial from. The simulated fleet gives each agent a loopback address of its
   * own, as each instance has its own IP: the agent API limits refusals per remote address, and a
   * fleet sharing 127.0.0.1 would be throttled as one peer.
   */
  localAddress?: string;
  nonce?: string;
  /** The cluster CA. Optional when the nonce pins it (claim `cafp`): it is then discovered from the agent API. */
  caPem?: string;
  stateDir: string;
  ip?: string;
  hostname?: string;
  /** Overrides the interval the agent API returns at registration. */
  healthIntervalMs?: number;
  /** Re-fetch files every N health reports (besides at once when a report's answer says they changed). */
  filesEvery?: number;
  /** Where fetched files are written; defaults to <stateDir>/files (a simulation must not write /etc). */
  filesRoot?: string;
  /** What to report; the fleet uses it to simulate failures and termination notices. */
  probe?: () => HealthReportBody;
  /**
   * Where termination notices come from (`nstance agent`: IMDS). Polled on its own timer,
   * much shorter than the health interval, because a spot notice gives two minutes; a new
   * notice is reported at once, and then in every report.
   */
  notices?: NoticeSource;
  /** How often to poll `notices` (AWS suggests every 5 s). */
  noticePollMs?: number;
  log?: (line: string) => void;
  /** Told of every finished request (status 0: no answer), for a benchmark's figures. */
  observe?: (done: { method: string; path: string; status: number; ms: number }) => void;
}

/**
 * The agent renews its certificate once this share of the time between receiving it and its expiry
 * has passed (60 of 90 days): the agent API accepts renewals in the second half of a certificate's
 * life, and a third of it is left for retries should the leader be unreachable for a while.
 */
export const RENEW_AFTER_SHARE = 2 / 3;

export class Agent {
  private state: AgentState | undefined;
  private timer: NodeJS.Timeout | undefined;
  private noticeTimer: NodeJS.Timeout | undefined;
  private notice: TerminationNotice | undefined;
  private stopped = false;
  private reports = 0;
  private caPem: string | undefined;
  /** Failed attempts in a row (for the backoff). */
  private failures = 0;
  private readonly transport: AgentTransport;
  lastError: Error | undefined;
  /** The files of the last fetch (path and mode): what the health report hashes from disk. */
  private delivered: { path: string; mode: string }[] | undefined;
  /** The digest of the server's file set in its last answer. */
  private serverFilesHash: string | undefined;
  /** A health report's answer said the files changed: fetch before the next report. */
  private filesChanged = false;
  /** Fetches made because an answer said the files changed (not the periodic ones). */
  pushedFetches = 0;

  /** The files this agent wrote (its own record): the only ones it ever removes. */
  readonly written: WrittenFiles;

  constructor(readonly options: AgentOptions) {
    this.caPem = options.caPem;
    this.transport = new AgentTransport(options);
    this.written = new WrittenFiles(options.stateDir, this.filesRoot);
  }

  get instanceId(): string | undefined {
    return this.state?.identity.instanceId;
  }

  get certificatePem(): string | undefined {
    return this.state?.certPem;
  }

  get serialNumber(): string | undefined {
    return this.state?.identity.serialNumber;
  }

  get intervalMs(): number {
    return this.options.healthIntervalMs ?? this.state?.identity.healthCheckIntervalMs ?? 60_000;
  }

  private log(line: string): void {
    this.options.log?.(line);
  }

  /** Registers unless the state directory already holds a certificate (an agent restart must not burn a new nonce). */
  async register(): Promise<AgentState> {
    const saved = this.state ?? (await loadState(this.options.stateDir));
    if (saved) return (this.state = saved);
    if (!this.options.nonce) throw new Error(`no registration in ${this.options.stateDir} and no nonce: pass --nonce`);
    this.caPem ??= await this.discoverCa(this.options.nonce);
    const keyPem = await loadOrCreateKey(this.options.stateDir, () => generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    const publicKey = createPublicKey(keyPem);
    const out = (await this.call('POST', '/v1/register', {
      nonce: this.options.nonce,
      publicKey: publicKey.export({ type: 'spki', format: 'pem' }),
      ip: this.options.ip,
      hostname: this.options.hostname,
    })) as { instanceId: string; certificate: string; caCertificate: string; serialNumber: string; healthCheckIntervalMs: number };
    const state: AgentState = {
      keyPem,
      certPem: out.certificate,
      caPem: out.caCertificate,
      identity: { instanceId: out.instanceId, serialNumber: out.serialNumber, registeredAt: new Date().toISOString(), healthCheckIntervalMs: out.healthCheckIntervalMs },
    };
    await saveState(this.options.stateDir, state);
    this.log(`registered as ${out.instanceId} (certificate ${out.serialNumber})`);
    return (this.state = state);
  }

  /** What the next report says: the probe's verdict, with the termination notice seen (if the probe has none of its own). */
  healthReport(): HealthReportBody {
    const report = this.options.probe?.() ?? { status: 'healthy' };
    return report.terminationNotice || !this.notice ? report : { ...report, terminationNotice: this.notice };
  }

  /**
   * Asks the notice source once; returns the notice if it is new (another deadline than the
   * one seen). A notice is kept once seen: EC2 does not take a spot interruption back.
   */
  async checkNotice(): Promise<TerminationNotice | undefined> {
    const found = await this.options.notices?.poll();
    if (!found || found.deadline === this.notice?.deadline) return undefined;
    this.notice = found;
    this.log(`termination notice: ${found.reason ?? 'no reason given'}, host reclaimed at ${found.deadline}`);
    return found;
  }

  async reportHealth(report: HealthReportBody = this.healthReport()): Promise<void> {
    const state = await this.register();
    const files = this.delivered && filesReport(await heldManifest(this.filesRoot, this.delivered), this.serverFilesHash);
    const answer = (await this.call('POST', '/v1/health', { instanceId: state.identity.instanceId, ...report, ...(files ? { files } : {}) }, state)) as {
      files?: { hash: string; changed: boolean };
    };
    if (answer.files) {
      this.serverFilesHash = answer.files.hash;
      if (answer.files.changed) this.filesChanged = true;
    }
  }

  private get filesRoot(): string {
    return this.options.filesRoot ?? join(this.options.stateDir, 'files');
  }

  /** When the current certificate is due for renewal (ms since the epoch); undefined before registration. */
  renewalDueAt(): number | undefined {
    const state = this.state;
    if (!state) return undefined;
    const notAfter = Date.parse(new X509Certificate(state.certPem).validTo);
    const received = Date.parse(state.identity.renewedAt ?? state.identity.registeredAt);
    return received + RENEW_AFTER_SHARE * (notAfter - received);
  }

  /**
   * A new key and a certificate for it, asked for with the current certificate (mTLS) before it
   * expires: an expired certificate cannot be renewed, and the nonce that got the first is spent.
   */
  async renew(): Promise<AgentState> {
    const state = await this.register();
    const keyPem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const out = (await this.call('POST', '/v1/renew', { instanceId: state.identity.instanceId, publicKey: createPublicKey(keyPem).export({ type: 'spki', format: 'pem' }) }, state)) as {
      certificate: string;
      caCertificate: string;
      serialNumber: string;
    };
    const renewed: AgentState = {
      keyPem,
      certPem: out.certificate,
      caPem: out.caCertificate,
      identity: { ...state.identity, serialNumber: out.serialNumber, renewedAt: new Date().toISOString() },
    };
    await saveRenewedState(this.options.stateDir, renewed);
    this.log(`renewed certificate ${state.identity.serialNumber} -> ${out.serialNumber}`);
    return (this.state = renewed);
  }

  /**
   * Fetches and writes the instance's files. Certificate files whose key is made here come back as
   * key requests: the pair is made (or reused) on disk, only the public keys are submitted, and the
   * files are fetched once more to get their certificates. One fetch at a time: two at once would each
   * make a key pair where none was yet, and submit different public keys for one file.
   */
  fetchFiles(): Promise<DeliveredFile[]> {
    const fetched = this.fetching.then(() => this.fetchFilesNow());
    this.fetching = fetched.catch(() => undefined);
    return fetched;
  }

  private fetching: Promise<unknown> = Promise.resolve();

  private async fetchFilesNow(): Promise<DeliveredFile[]> {
    const state = await this.register();
    const out = await fetchAndWriteFiles({
      call: (method, path, body) => this.call(method, path, body, state),
      instanceId: state.identity.instanceId,
      root: this.filesRoot,
      written: this.written,
      log: (line) => this.log(line),
    });
    this.delivered = out.files.map((f) => ({ path: f.path, mode: f.mode }));
    this.serverFilesHash = out.hash;
    this.filesChanged = false;
    return out.files;
  }

  /** Register (retrying while the leader is not ready), fetch files, then report every interval until stop(). */
  start(): void {
    const tick = async (): Promise<void> => {
      if (this.stopped) return;
      try {
        const first = !this.state;
        await this.register();
        const due = this.renewalDueAt();
        if (due !== undefined && Date.now() >= due) {
          // A failed renewal leaves the current certificate in use: the next tick tries again.
          await this.renew().catch((err: Error) => this.log(`agent ${this.instanceId}: certificate renewal failed (will retry): ${err.message}`));
        }
        if (first || this.reports % (this.options.filesEvery ?? 10) === 0) await this.fetchFiles();
        this.reports++;
        await this.reportHealth();
        if (this.filesChanged) {
          // Pushed: the answer says the server delivers something else now (a var, a secret, a reissued certificate).
          this.pushedFetches++;
          await this.fetchFiles();
        }
        this.lastError = undefined;
        this.failures = 0;
      } catch (err) {
        this.lastError = err as Error;
        this.failures++;
        this.log(`agent ${this.instanceId ?? this.options.stateDir}: ${(err as Error).message}`);
        // A rejected registration (bad nonce) cannot get better by retrying.
        if (!this.state && err instanceof AgentRequestError && !err.retryable) {
          this.stopped = true;
          return;
        }
      }
      if (this.stopped) return;
      // After a failure, back off (never longer than an interval once registered); otherwise report on the interval.
      const interval = jitteredIntervalMs(this.intervalMs);
      const backoff = this.failures === 0 ? interval : retryDelayMs(this.failures, this.lastError);
      this.timer = setTimeout(() => void tick(), this.state ? Math.min(backoff, interval) : backoff);
      this.timer.unref();
    };
    void tick();
    if (this.options.notices) this.watchNotices();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.noticeTimer) clearTimeout(this.noticeTimer);
    this.transport.destroy();
  }

  /** Polls for termination notices; a new one is reported now rather than at the next health interval. */
  private watchNotices(): void {
    const poll = async (): Promise<void> => {
      if (this.stopped) return;
      // A source that breaks its promise never to throw must not end the loop (nor health reporting).
      const fresh = await this.checkNotice().catch(() => undefined);
      // Not registered yet: the first report (right after registration) carries it.
      if (fresh && this.state && !this.stopped) {
        await this.reportHealth().catch((err: Error) => {
          // The regular reports carry the notice too: the next one retries it.
          this.lastError = err;
          this.log(`agent ${this.instanceId}: reporting the termination notice: ${err.message}`);
        });
      }
      if (this.stopped) return;
      this.noticeTimer = setTimeout(() => void poll(), this.options.noticePollMs ?? 5000);
      this.noticeTimer.unref();
    };
    void poll();
  }

  get running(): boolean {
    return !this.stopped;
  }

  private async discoverCa(nonce: string): Promise<string> {
    const pin = peekClaims(nonce)?.cafp;
    if (!pin) throw new Error('no cluster CA: pass the CA certificate (--ca-file), or use a nonce that pins it');
    const ca = await discoverPinnedCa(splitAddress(this.options.connectAddress ?? this.options.registerAddress), pin);
    this.log(`discovered the cluster CA pinned by the nonce (sha256 ${pin.slice(0, 16)}…)`);
    return ca;
  }

  /** One JSON request over TLS 1.3 with the CA this agent trusts (see AgentTransport). */
  private call(method: string, path: string, body: unknown, identity?: AgentState): Promise<unknown> {
    return this.transport.call(method, path, body, this.state?.caPem ?? this.caPem, identity);
  }
}
