/**
 * Samples a phase in the background: the group's status query, the worker's memory, the
 * fleet's progress and what EC2 holds, every BENCH_SAMPLE. What EC2 holds comes from the
 * fault proxy's ledger (ledger.ts), never from describing EC2 during a phase: a describe
 * of thousands of instances holds moto's one thread for tens of seconds, and the
 * orchestrator's own calls would wait behind it. A phase confirms the ledger with one
 * describe at its end (`confirm`). Waiters get the time (from the phase start) of the
 * first sample at which their condition held.
 */
import type { WorkerProcess } from '../../test/support/processes';
import { ec2View, type Ec2View } from './ec2-view';
import type { FleetProcess } from './fleet-process';
import { memoryOf } from './proc';
import { inServiceOf, type BenchGroupStatus, type ScaleStack } from './stack';

export interface Sample {
  /** ms since the phase started. */
  t: number;
  /** What EC2 holds, from the proxy's ledger (on moto, a held instance is running). */
  ec2: { held: number };
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
  /** What EC2 holds, from the proxy's ledger. */
  ec2: { held: number; heldIds: ReadonlySet<string> };
  group?: BenchGroupStatus;
}

interface Waiter {
  what: string;
  holds: (v: View) => boolean;
  resolve: (t: number) => void;
  reject: (err: Error) => void;
  deadline: number;
}

export interface WatchOptions {
  /** The tag whose instances count (the project's nstance:shard, or the floor's own), for `confirm`. */
  tag: { key: string; value: string };
  /** What EC2 holds of those instances now, from the proxy's ledger. */
  held: () => ReadonlySet<string>;
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
  /** Most instances EC2 held in one sample (the ledger's exact maximum is heldCurve's). */
  maxHeld = 0;
  maxWorkerRssBytes = 0;
  /** The benchmark's own reads of EC2 (`confirm`; they load moto too): how many, and how long they took in all. */
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

  /**
   * One describe of EC2 (moto, directly), to confirm what the ledger says: taken once the phase's
   * figures are in, so that it delays nothing the project does while it is timed.
   */
  async confirm(): Promise<Ec2View> {
    const ec2 = await ec2View(this.stack.aws.ec2, this.options.tag);
    this.reads.describes++;
    this.reads.seconds = Math.round((this.reads.seconds + ec2.tookMs / 1000) * 10) / 10;
    return ec2;
  }

  private async sample(): Promise<View> {
    const at = Date.now();
    const group = this.options.group ? await this.stack.groupStatus().catch(() => undefined) : undefined;
    const heldIds = this.options.held();
    const view: View = { at, ec2: { held: heldIds.size, heldIds }, group };
    this.last = view;
    this.maxHeld = Math.max(this.maxHeld, heldIds.size);
    const sample: Sample = { t: at - this.options.startedAt, ec2: { held: heldIds.size } };
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
      `EC2 holds ${s.ec2.held}`,
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
      const state = `EC2 holds ${this.last?.ec2.held ?? '?'}` + (g ? `; group desired ${g.desired}, running ${g.running}, pending ${g.pending}, draining ${g.draining}, in service ${inServiceOf(g)}${g.lastError ? `, last error: ${g.lastError}` : ''}` : '');
      w.reject(new Error(`timed out waiting for ${w.what} (${state})`));
      return false;
    });
  }
}

/** What the one describe at a phase's end showed. */
export interface Confirmation {
  running: number;
  held: number;
  describeMs: number;
}

/** The phase's closing describe; fails the phase when EC2 does not show the `size` running that the ledger counted. */
export async function confirmRunning(watch: PhaseWatch, size: number, who: string): Promise<Confirmation> {
  const ec2 = await watch.confirm();
  if (ec2.running < size) throw new Error(`the proxy's ledger counted ${size} held for ${who}, but a describe of EC2 shows ${ec2.running} running (${JSON.stringify(ec2.byState)})`);
  return { running: ec2.running, held: ec2.held, describeMs: ec2.tookMs };
}

/** A phase's samples thinned to about `max` (the first and last kept), for the results file. */
export function thin<T>(samples: readonly T[], max = 120): T[] {
  if (samples.length <= max) return [...samples];
  const step = (samples.length - 1) / (max - 1);
  return Array.from({ length: max }, (_, i) => samples[Math.round(i * step)] as T);
}
