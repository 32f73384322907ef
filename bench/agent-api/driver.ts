/**
 * The simulated agents of bench/agent-api.ts, in their own process (child_process.fork),
 * so the benchmark measures the API and not them. Each is the real `Agent` (register with
 * backoff, files, health on its interval) with its own state directory and connections;
 * the driver only counts what they see. It is told what to do over IPC:
 *   init  {address, caPem, stateRoot, healthIntervalMs}
 *   start {batch, agents: [{instanceId, nonce}]}    → 'registered' once the batch is in
 *   adopt {agents: [{instanceId, keyPem, certPem}]} → 'adopted' (agents that hold a certificate already)
 *   stats {id, reset}                                → 'stats' (latencies by path)
 *   stop                                             → exits
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Agent } from '../../client/agent/agent';
import { saveState } from '../../client/agent/state';
import type { DriverMessage, DriverReply, PathStats } from './protocol';

let address = '';
let caPem = '';
let stateRoot = '';
let healthIntervalMs = 60_000;
const agents: Agent[] = [];
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();

/** Latencies (ms) and statuses per "METHOD path", since the last reset. */
let samples = new Map<string, { ms: number[]; statuses: Record<string, number> }>();

function record(done: { method: string; path: string; status: number; ms: number }): void {
  const key = `${done.method} ${done.path}`;
  let s = samples.get(key);
  if (!s) samples.set(key, (s = { ms: [], statuses: {} }));
  s.statuses[done.status] = (s.statuses[done.status] ?? 0) + 1;
  if (done.status === 200) s.ms.push(done.ms);
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

function stats(): Record<string, PathStats> {
  const out: Record<string, PathStats> = {};
  for (const [key, s] of samples) {
    const sorted = Float64Array.from(s.ms).sort();
    const list = Array.from(sorted);
    const round = (n: number) => Math.round(n * 10) / 10;
    out[key] = { answered: list.length, statuses: s.statuses, p50: round(percentile(list, 50)), p90: round(percentile(list, 90)), p99: round(percentile(list, 99)), max: round(list[list.length - 1] ?? 0) };
  }
  return out;
}

function reply(message: DriverReply): void {
  process.send?.(message);
}

function startBatch(batch: string, list: { instanceId: string; nonce: string }[]): void {
  const began = performance.now();
  const registeredAt: number[] = [];
  const mine: Agent[] = [];
  for (const { instanceId, nonce } of list) {
    const stateDir = join(stateRoot, instanceId);
    mkdirSync(stateDir, { recursive: true });
    let counted = false;
    const agent = new Agent({
      registerAddress: address,
      nonce,
      caPem,
      stateDir,
      healthIntervalMs,
      observe: (r) => {
        record(r);
        if (!counted && r.path === '/v1/register' && r.status === 200) {
          counted = true;
          registeredAt.push(performance.now() - began);
        }
      },
    });
    mine.push(agent);
    agents.push(agent);
    agent.start();
  }
  // Done when every agent holds a certificate or gave up (a final 4xx stops it).
  const check = setInterval(() => {
    const failed = mine.filter((a) => !a.running && !a.serialNumber).length;
    if (registeredAt.length + failed < list.length) return;
    clearInterval(check);
    reply({ type: 'registered', batch, registeredMs: registeredAt.sort((a, b) => a - b), failed });
  }, 100);
}

async function adopt(list: Extract<DriverMessage, { type: 'adopt' }>['agents']): Promise<void> {
  for (const a of list) {
    const stateDir = join(stateRoot, a.instanceId);
    await saveState(stateDir, {
      keyPem: a.keyPem,
      certPem: a.certPem,
      caPem,
      identity: { instanceId: a.instanceId, serialNumber: a.serialNumber, registeredAt: new Date().toISOString(), healthCheckIntervalMs: healthIntervalMs },
    });
    const agent = new Agent({ registerAddress: address, caPem, stateDir, healthIntervalMs, observe: record });
    agents.push(agent);
    agent.start();
  }
  reply({ type: 'adopted', count: list.length });
}

process.on('message', (message: DriverMessage) => {
  switch (message.type) {
    case 'init':
      ({ address, caPem, stateRoot, healthIntervalMs } = message);
      return;
    case 'start':
      return startBatch(message.batch, message.agents);
    case 'adopt':
      void adopt(message.agents);
      return;
    case 'stats': {
      const out = stats();
      const lag = { p99: Math.round(loopDelay.percentile(99) / 1e6), max: Math.round(loopDelay.max / 1e6) };
      if (message.reset) {
        samples = new Map();
        loopDelay.reset();
      }
      reply({ type: 'stats', id: message.id, paths: out, agents: agents.length, registered: agents.filter((a) => a.serialNumber).length, eventLoopDelayMs: lag, rssBytes: process.memoryUsage().rss });
      return;
    }
    case 'stop':
      for (const a of agents) a.stop();
      process.exit(0);
  }
});

reply({ type: 'ready' });
