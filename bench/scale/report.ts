/** The scale benchmark's results: the JSON written to bench/results/scale.json, and the summary printed. */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Table from 'cli-table3';
import { EC2_BUCKETS } from '../../test/support/ec2-limits';
import { REPO_ROOT } from '../../test/support/processes';
import type { FloorResult, LaunchTemplate } from './floor';
import type { ScaleOptions } from './options';
import type { ReplacementResult } from './replacement';
import type { ScaleUpResult } from './scale-up';

export interface SizeResult {
  size: number;
  floor: FloorResult;
  project: ScaleUpResult;
  /** Project time over floor time: to all running, and to all in service (against the floor's all running). */
  ratio: { running: number; inService: number };
}

export interface ScaleReport {
  benchmark: 'scale';
  measured: string;
  at: string;
  complete: boolean;
  build: { commit?: string; dirty?: boolean; statusQuery: { inService: boolean; diagnostics: boolean }; maxSurge?: boolean };
  machine: { cpus: number; cpuModel?: string; memoryGb: number; node: string; platform: string };
  stack: { temporal: string; suggestContinueAsNewAt: number; emulator: string; faultProxy: { buckets: typeof EC2_BUCKETS; clientTokens: boolean } };
  /** moto's tag look-up indexed by resource id (test/support/moto/sitecustomize.py): its own scan is not what is measured. */
  motoIndexedTags?: boolean;
  options: Omit<ScaleOptions, 'out' | 'keepLogs'>;
  config?: Record<string, unknown>;
  launch?: Pick<LaunchTemplate, 'instanceType' | 'userDataBytes'> & { tags: number; subnets: number };
  goals: Record<string, string>;
  sizes: SizeResult[];
  replacement?: ReplacementResult | { skipped: string };
  /** Where a phase failed, when one did. */
  error?: string;
}

const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

export function ratioOf(project: ScaleUpResult, floor: FloorResult): SizeResult['ratio'] {
  return { running: round(project.allRunningMs / floor.allRunningMs), inService: round(project.allInServiceMs / floor.allRunningMs) };
}

function git(args: string[]): string | undefined {
  try {
    return execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

export function newReport(options: ScaleOptions): ScaleReport {
  const { out: _out, keepLogs: _keep, ...knobs } = options;
  return {
    benchmark: 'scale',
    measured:
      '0 -> N with `nstance group scale` (one worker process, the simulated fleet in its own process) against a direct-SDK RunInstances loop (the floor), both through an HTTP fault proxy enforcing EC2 token buckets and ClientToken rules in front of moto; times until EC2 shows all N running and until the group has N in service',
    at: new Date().toISOString(),
    complete: false,
    build: { commit: git(['rev-parse', '--short', 'HEAD']), dirty: git(['status', '--porcelain', '--untracked-files=no']) !== '', statusQuery: { inService: false, diagnostics: false } },
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memoryGb: round(os.totalmem() / 2 ** 30, 1), node: process.version, platform: `${os.platform()} ${os.arch()}` },
    stack: {
      temporal: 'temporal server start-dev (in-memory), private to the run',
      suggestContinueAsNewAt: options.suggestContinueAsNewAt,
      emulator: 'moto server, private to the run',
      faultProxy: { buckets: EC2_BUCKETS, clientTokens: true },
    },
    options: knobs,
    goals: {
      'n500.running': '<= 1.5 x floor',
      'n500.inService': 'within 30 s of all running',
      'n2000.running': '<= 2 x floor, with 0 RequestLimitExceeded reaching a workflow',
      'n2000.workerRss': '<= 400 MB',
      replacement: 'EC2 never holds more than size + max_surge',
    },
    sizes: [],
  };
}

export function writeReport(report: ScaleReport, file: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
}

const s = (ms: number | undefined) => (ms === undefined ? '-' : `${round(ms / 1000, 1)} s`);
const n = (x: number | undefined, digits = 2) => (x === undefined ? '-' : String(round(x, digits)));

export function summary(report: ScaleReport): string {
  const lines: string[] = [];
  const table = new Table({
    head: ['N', 'floor: running', 'project: running', 'in service', 'in service - running', 'Describe/inst', 'calls/inst', 'throttles injected/surfaced', 'events/pass', 'carried bytes', 'worker RSS max', 'registrations/s'],
    style: { head: [], border: [] },
  });
  for (const r of report.sizes) {
    const p = r.project;
    table.push([
      r.size,
      s(r.floor.allRunningMs),
      `${s(p.allRunningMs)} (${r.ratio.running}x)`,
      `${s(p.allInServiceMs)} (${r.ratio.inService}x)`,
      s(p.inServiceAfterRunningMs),
      n(p.calls.perInstance['ec2:DescribeInstances'], 2),
      n(p.calls.totalPerInstance, 1),
      `${p.throttles.injected}/${p.throttles.surfaced}`,
      p.passes.eventsPerPass !== undefined ? n(p.passes.eventsPerPass, 1) : `- (${n(p.passes.groupEventsPerInstance, 1)}/inst)`,
      n(p.passes.carriedStateBytesMax ?? p.histories.group.carriedStateBytesMax, 0),
      `${n(p.worker.maxRssMb, 0)} MB`,
      n(p.registrations.perSecond, 1),
    ]);
  }
  lines.push(table.toString());
  for (const r of report.sizes) {
    const top = Object.entries(r.project.calls.perInstance).sort(([, a], [, b]) => b - a).slice(0, 10);
    lines.push(`N=${r.size} AWS calls per instance: ${top.map(([k, v]) => `${k} ${v}`).join(', ')}`);
    const s3 = Object.entries(r.project.calls.raw.s3).sort(([, a], [, b]) => b - a).slice(0, 6);
    if (s3.length > 0) lines.push(`N=${r.size} S3: ${s3.map(([k, v]) => `${k} ${v}`).join(', ')}`);
    const replay = r.project.replay;
    lines.push(`N=${r.size} group workflow replay: ${replay.runs} runs, ${replay.failed} failed${replay.failed ? ` (${replay.errors[0]}; saved: ${replay.saved.join(', ')})` : ''}`);
    const timings = Object.entries(r.project.histories.timings ?? {}).sort(([, x], [, y]) => y.waited.totalS + y.ran.totalS - (x.waited.totalS + x.ran.totalS));
    for (const [step, t] of timings.slice(0, 12)) {
      lines.push(`N=${r.size} ${step} x${t.ran.count}: waited median ${t.waited.medianMs} ms, p90 ${t.waited.p90Ms} ms (${t.waited.totalS} s in all); ran median ${t.ran.medianMs} ms, p90 ${t.ran.p90Ms} ms, max ${t.ran.maxMs} ms (${t.ran.totalS} s)`);
    }
    const failures = Object.entries(r.project.histories.activityFailures).sort(([, a], [, b]) => b - a).slice(0, 5);
    if (failures.length > 0) lines.push(`N=${r.size} failures reaching workflows: ${failures.map(([k, v]) => `${v} x ${k}`).join('; ')}`);
    lines.push(`N=${r.size} CPU seconds: ${Object.entries(r.project.cpuSeconds).map(([k, v]) => `${k} ${v}`).join(', ')} (the benchmark's own EC2 reads: ${r.project.benchReads.describes} describes, ${r.project.benchReads.seconds} s; load average ${r.project.loadAverage.start} -> ${r.project.loadAverage.end}); leader changes ${r.project.leaderChanges ?? '-'}; hold ${s(r.project.hold.ms)}: min in service ${r.project.hold.minInService}, RunInstances ${r.project.hold.runInstances}`);
  }
  const rep = report.replacement;
  if (rep && 'skipped' in rep) lines.push(`replacement: skipped (${rep.skipped})`);
  else if (rep) {
    lines.push(
      `replacement of ${rep.size} (expiry ${rep.expiry}, max_surge ${rep.maxSurge ?? 'unsupported by this build: surge 1'}): all replaced in ${s(rep.replaceAllMs)}; ` +
        `EC2 held at most ${rep.maxHeld} (sampled ${rep.maxHeldSampled}; allowed ${rep.allowedHeld}: ${rep.withinSurge ? 'ok' : 'EXCEEDED'}); fewest in service ${rep.minInService}; leader changes ${rep.leaderChanges ?? '-'}; throttles injected/surfaced ${rep.throttles.injected}/${rep.throttles.surfaced}; worker RSS max ${rep.worker.maxRssMb} MB; group replay ${rep.replay.runs} runs, ${rep.replay.failed} failed${rep.replay.failed ? ` (${rep.replay.errors[0]}; saved: ${rep.replay.saved.join(', ')})` : ''}`,
    );
  }
  if (report.error) lines.push(`FAILED: ${report.error}`);
  return lines.join('\n');
}
