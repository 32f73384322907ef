/**
 * Samples a phase in the background: the group's status query, the worker's memory and
 * the fleet's progress every BENCH_SAMPLE, and what EC2 holds (moto, directly) less often:
 * describing thousands of instances costs moto seconds, which the orchestrator would then
 * wait for. (Exact launch and termination times come from the fault proxy's ledger, see
 * ledger.ts; EC2 reads here confirm them and give progress.) Waiters get the time (from
 * the phase start) of the first sample at which their condition held.
 */
import type { WorkerProcess } from '../../test/support/processes';
import { ec2View, type Ec2View } from './ec2-view';
import type { FleetProcess } from './fleet-process';
import { memoryOf } from './proc';
import { inServiceOf, type BenchGroupStatus, type ScaleStack } from './stack';

export interface Sample {
  /** ms since the phase started. */
  t: number;
  /** The latest EC2 reading (taken `ec2.age` ms before this sample). */
  ec2: { running: number; held: number; describeMs: number; ageMs: number };
  group?: {
    desired: number;
    running: number;
    pending: number;
    draining: number;
    inService: number;
    lastError?: string;
    passes?: number;
    historyLength?: number;
    carriedStateBytes?: number;
  };
  fleet?: { agents: number; registered: number };
  workerRssMb?: number;
}

export interface View {
  /** When this sample was taken (ms since epoch). */
  at: number;
  /** The latest EC2 reading, possibly a few seconds older than the sample. */
  ec2: Ec2View;
  group?: BenchGroupStatus;
}

/**
 * EC2 is read at most this often, and not more often than every 10 reads' worth of time: the proxy's
 * ledger gives the exact counts; a describe of thousands of instances costs moto, shared with the code
 * under test, seconds of its one thread.
 */
const EC2_EVERY_MS = 30_000;
const EC2_MAX_SPACING_MS = 60_000;

interface Waiter {
  what: string;
  holds: (v: View) => boolean;
  resolve: (t: number) => void;
  reject: (err: Error) => void;
  deadline: number;
}

export interface WatchOptions {
  /** The tag whose instances count (the project's nstance:shard, or the floor's own). */
  tag: { key: string; value: string };
  startedAt: number;
  worker?: WorkerProcess;
  fleet?: FleetProcess;
  /** Read the group's status query too. */
  group?: boolean;
  /** Print a progress line under this label every `progressMs` (default 15 s). */
  label?: string;
  progressMs?: number;
}

const mb = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;

export class PhaseWatch {
  readonly samples: Sample[] = [];
  /** Most instances EC2 held in one sample. */
  maxHeld = 0;
  maxWorkerRssBytes = 0;
  /** The benchmark's own reads of EC2 (they load moto too): how many, and how long they took in all. */
  reads = { describes: 0, seconds: 0 };
  last?: View;
  private waiters: Waiter[] = [];
  private stopped = false;
  private lastProgressAt = 0;
  private loop?: Promise<void>;

  constructor(
    private readonly stack: ScaleStack,
    private readonly options: WatchOptions,
  ) {}

  start(): this {
    this.loop = this.run();
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  /** ms from the phase start to the first sample at which `holds` is true (rejects after `timeoutMs`). */
  until(what: string, holds: (v: View) => boolean, timeoutMs: number): Promise<number> {
    return new Promise((resolve, reject) => this.waiters.push({ what, holds, resolve, reject, deadline: Date.now() + timeoutMs }));
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const started = Date.now();
      try {
        const view = await this.sample();
        this.settle(view);
      } catch (err) {
        // A slow or failed read is one missing sample, not the end of the phase.
        process.stderr.write(`bench: sample failed: ${(err as Error).message}\n`);
      }
      this.expire();
      const wait = this.stack.options.sampleMs - (Date.now() - started);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  }

  /** Forces the next sample to read EC2 (a waiter wants a fresh reading to confirm what the ledger says). */
  refreshEc2(): void {
    this.ec2DueAt = 0;
  }

  private ec2DueAt = 0;
  private ec2?: Ec2View;

  private async readEc2(): Promise<Ec2View> {
    if (this.ec2 && Date.now() < this.ec2DueAt) return this.ec2;
    const ec2 = await ec2View(this.stack.aws.ec2, this.options.tag);
    this.ec2 = ec2;
    // Spaced by how long it took (moto is the code under test's too), but never so far that a phase's end
    // waits minutes on one slow read taken while moto was busiest.
    this.ec2DueAt = Date.now() + Math.min(EC2_MAX_SPACING_MS, Math.max(EC2_EVERY_MS, 10 * ec2.tookMs));
    this.reads.describes++;
    this.reads.seconds = Math.round((this.reads.seconds + ec2.tookMs / 1000) * 10) / 10;
    this.maxHeld = Math.max(this.maxHeld, ec2.held);
    return ec2;
  }

  private async sample(): Promise<View> {
    const at = Date.now();
    const [ec2, group] = await Promise.all([
      this.readEc2(),
      this.options.group ? this.stack.groupStatus().catch(() => undefined) : Promise.resolve(undefined),
    ]);
    const view: View = { at, ec2, group };
    this.last = view;
    const sample: Sample = { t: at - this.options.startedAt, ec2: { running: ec2.running, held: ec2.held, describeMs: ec2.tookMs, ageMs: Math.max(0, at - ec2.at) } };
    if (group) {
      const d = group.diagnostics;
      sample.group = {
        desired: group.desired,
        running: group.running,
        pending: group.pending,
        draining: group.draining,
        inService: inServiceOf(group),
        ...(group.lastError ? { lastError: group.lastError } : {}),
        ...(d ? { passes: d.passes, historyLength: d.historyLength, carriedStateBytes: d.carriedStateBytes } : {}),
      };
    }
    const stats = this.options.fleet?.report().stats;
    if (stats) sample.fleet = { agents: stats.agents, registered: stats.registered };
    const memory = this.options.worker?.child.pid ? memoryOf(this.options.worker.child.pid) : undefined;
    if (memory) {
      sample.workerRssMb = mb(memory.rssBytes);
      this.maxWorkerRssBytes = Math.max(this.maxWorkerRssBytes, memory.rssBytes);
    }
    this.samples.push(sample);
    this.progress(sample);
    return view;
  }

  private progress(s: Sample): void {
    if (!this.options.label || Date.now() - this.lastProgressAt < (this.options.progressMs ?? 15_000)) return;
    this.lastProgressAt = Date.now();
    const g = s.group;
    const parts = [
      `EC2 running ${s.ec2.running}, held ${s.ec2.held}`,
      ...(g ? [`group desired ${g.desired}, in service ${g.inService}, pending ${g.pending}, draining ${g.draining}`] : []),
      ...(s.fleet ? [`fleet registered ${s.fleet.registered}/${s.fleet.agents}`] : []),
      ...(s.workerRssMb !== undefined ? [`worker RSS ${s.workerRssMb} MB`] : []),
      ...(g?.lastError ? [`last error: ${g.lastError.slice(0, 120)}`] : []),
    ];
    console.log(`  [${this.options.label} ${Math.round(s.t / 1000)}s] ${parts.join('; ')}`);
  }

  private settle(view: View): void {
    const t = view.at - this.options.startedAt;
    this.waiters = this.waiters.filter((w) => {
      if (!w.holds(view)) return true;
      w.resolve(t);
      return false;
    });
  }

  private expire(): void {
    const now = Date.now();
    this.waiters = this.waiters.filter((w) => {
      if (now < w.deadline) return true;
      const g = this.last?.group;
      const state = `EC2 running ${this.last?.ec2.running ?? '?'}, held ${this.last?.ec2.held ?? '?'}` + (g ? `; group desired ${g.desired}, running ${g.running}, pending ${g.pending}, draining ${g.draining}, in service ${inServiceOf(g)}${g.lastError ? `, last error: ${g.lastError}` : ''}` : '');
      w.reject(new Error(`timed out waiting for ${w.what} (${state})`));
      return false;
    });
  }
}

/** A phase's samples thinned to about `max` (the first and last kept), for the results file. */
export function thin<T>(samples: readonly T[], max = 120): T[] {
  if (samples.length <= max) return [...samples];
  const step = (samples.length - 1) / (max - 1);
  return Array.from({ length: max }, (_, i) => samples[Math.round(i * step)] as T);
}
