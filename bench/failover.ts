/**
 * Failover benchmark: time from `kill -9` of the leader worker process to EC2
 * showing the leader ENI attached to the new leader, over several runs.
 *
 *   npm run bench            (scripts/bench.sh: builds, then runs dist/bench/failover.js)
 *   BENCH_RUNS=7 BENCH_HEARTBEAT_TIMEOUT=4s npm run bench
 *
 * It starts its own Temporal dev server and moto (the integration tests' global
 * setup), three worker processes on their own EC2 instances (moto), and the ENI
 * fault proxy (attach/detach take ATTACH/DETACH delay, as EC2 does). After each
 * kill a replacement worker joins, so every run fails over among live standbys.
 * Results: printed, and written to bench/results/failover.json.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseDuration } from '../common/duration';
import globalSetup from '../test/support/global-setup';
import globalTeardown from '../test/support/global-teardown';
import { eventually } from '../test/support/emulator';
import { LeaderStack, type LeaderWorker } from '../test/support/leader-stack';
import { answering, REPO_ROOT } from '../test/support/processes';
import { runBenchmark } from './run';

interface Run {
  run: number;
  killed: string;
  newLeader: string;
  /** kill -9 → EC2 shows the ENI attached (status attached) to the new leader's instance. */
  eniAttachedMs: number;
  /** kill -9 → the new leader's status endpoint answers 200. */
  servingMs: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : Math.round(((s[mid - 1] as number) + (s[mid] as number)) / 2);
};

async function standbys(stack: LeaderStack, n: number): Promise<void> {
  await eventually(`${n} standbys`, async () => {
    const view = JSON.parse(await stack.cli(['leader', '--json'])) as { candidates: { role: string }[] };
    return view.candidates.filter((c) => c.role === 'standby').length >= n ? true : undefined;
  }, 120_000, 500);
}

async function main(): Promise<void> {
  const runs = Number(process.env.BENCH_RUNS ?? 7);
  const heartbeatTimeout = process.env.BENCH_HEARTBEAT_TIMEOUT ?? '4s';
  await globalSetup();
  let stack: LeaderStack | undefined;
  try {
    stack = await LeaderStack.create({ shard: `bench-${Date.now().toString(36)}`, heartbeatTimeout });
    let next = 1;
    const first = await stack.startWorker(`w${next++}`);
    await stack.waitForLeader(first, 120_000);
    for (let i = 0; i < 2; i++) await stack.startWorker(`w${next++}`);
    await standbys(stack, 2);

    const results: Run[] = [];
    for (let run = 1; run <= runs; run++) {
      const leaderId = (await answering(stack.live()))[0]?.workerId;
      const leader = stack.workers.find((w) => w.spec.workerId === leaderId && w.alive()) as LeaderWorker;
      if (!leader) throw new Error('no leader answering before the kill');
      const t0 = Date.now();
      leader.kill('SIGKILL');
      let servingMs: number | undefined;
      let newLeader = '';
      const eniAttachedMs = await eventually(
        'the ENI on a new leader',
        async () => {
          if (servingMs === undefined) {
            const now = await answering(stack!.live());
            if (now.length === 1) {
              servingMs = Date.now() - t0;
              newLeader = now[0]?.workerId ?? '';
            }
          }
          const eni = await stack!.eni();
          const a = eni.attachment;
          return a && a.status === 'attached' && a.instanceId !== leader.ec2InstanceId ? Date.now() - t0 : undefined;
        },
        60_000,
        50,
      );
      if (servingMs === undefined) {
        servingMs = await eventually('a serving leader', async () => ((await answering(stack!.live())).length === 1 ? Date.now() - t0 : undefined), 30_000, 50);
        newLeader = (await answering(stack.live()))[0]?.workerId ?? '';
      }
      results.push({ run, killed: leader.spec.workerId, newLeader, eniAttachedMs, servingMs });
      console.log(`run ${run}: killed ${leader.spec.workerId}, ENI attached to ${newLeader} after ${eniAttachedMs} ms (serving after ${servingMs} ms)`);
      await stack.startWorker(`w${next++}`);
      await standbys(stack, 2);
    }

    const attached = results.map((r) => r.eniAttachedMs);
    const summary = {
      measured: 'kill -9 of the leader worker process -> EC2 (moto behind the ENI fault proxy) shows the leader ENI attached to the new leader',
      at: new Date().toISOString(),
      runs: results.length,
      heartbeatTimeout,
      heartbeatTimeoutMs: parseDuration(heartbeatTimeout),
      emulatedAttachDelayMs: 600,
      emulatedDetachDelayMs: 600,
      medianMs: median(attached),
      maxMs: Math.max(...attached),
      minMs: Math.min(...attached),
      servingMedianMs: median(results.map((r) => r.servingMs)),
      machine: { cpus: os.cpus().length, node: process.version, platform: `${os.platform()} ${os.arch()}` },
      results,
    };
    const out = path.join(REPO_ROOT, 'bench', 'results', 'failover.json');
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, `${JSON.stringify(summary, null, 2)}\n`);
    console.log(`\nfailover (kill -9 -> ENI attached elsewhere), heartbeat timeout ${heartbeatTimeout}, ${results.length} runs: median ${summary.medianMs} ms, max ${summary.maxMs} ms, min ${summary.minMs} ms`);
    console.log(`new leader serving (status endpoint 200): median ${summary.servingMedianMs} ms`);
    console.log(`written to ${out}`);
  } finally {
    await stack?.close().catch(() => undefined);
    await globalTeardown();
  }
}

runBenchmark(main);
