/**
 * The benchmark's simulated fleet, in its own process (forked by bench/scale/processes.ts)
 * so that its agents' TLS and key work is not charged to the bench or the worker. It
 * talks to moto directly, not through the fault proxy: its EC2 reads are the simulator's,
 * not the orchestrator's, and must not spend the account's token buckets.
 *
 *   node dist/bench/scale/fleet-child.js '<FleetChildConfig as JSON>'
 *
 * Reports `FleetMessage`s over IPC: stats every `statsMs`, and the last ones when told to stop.
 * With `discovery: 'told'` the benchmark tells it which instances EC2 launched and terminated
 * (from the fault proxy's ledger), as a real instance starts its own agent at boot.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAwsClients, destroyAwsClients } from '../../adapters/aws/clients';
import { startFleet } from '../../client/agent/fleet-start';
import type { FleetStats } from '../../client/agent/fleet';

export interface FleetChildConfig {
  shard: string;
  bucket: string;
  /** moto's URL (not the fault proxy). */
  awsEndpoint: string;
  region: string;
  /** Where the worker's agent API listens (userdata names the leader network IP). */
  connect: string;
  pollMs: number;
  discovery: 'poll' | 'told';
  healthIntervalMs?: number;
  userdataConcurrency: number;
  statsMs: number;
}

/** What the benchmark tells the fleet: instances EC2 launched or terminated, and when to stop. */
export type FleetCommand = { type: 'launched' | 'terminated'; ids: string[] } | { type: 'stop' };

export type FleetMessage =
  | { type: 'ready' }
  | { type: 'stats'; at: number; stats: FleetStats; agentErrors: Record<string, number> }
  | { type: 'stopped'; at: number; stats: FleetStats; agentErrors: Record<string, number> }
  | { type: 'failed'; error: string };

/** An agent's failure line with ids and numbers taken out, so that alike failures count together. */
export function errorKind(line: string): string {
  return line
    .replace(/^\[[^\]]*\]\s*/, '')
    .replace(/^agent \S+: /, '')
    .replace(/\b(i-[0-9a-f]+|[a-z]{3}-[a-z0-9]{12})\b/g, '<id>')
    .replace(/\d+/g, 'N')
    .slice(0, 160);
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '') as FleetChildConfig;
  const send = (m: FleetMessage) => process.send?.(m);
  const agentErrors: Record<string, number> = {};
  const aws = createAwsClients({ region: config.region, endpoint: config.awsEndpoint });
  const log = (line: string) => {
    // Registrations and reports that worked are not news; failures are counted by kind.
    if (/registered as|discovered the cluster CA/.test(line)) return;
    const kind = errorKind(line);
    agentErrors[kind] = (agentErrors[kind] ?? 0) + 1;
    if (agentErrors[kind] <= 3) process.stderr.write(`${line}\n`);
  };
  const fleet = await startFleet({
    aws,
    bucket: config.bucket,
    shard: config.shard,
    resolveAddress: () => config.connect,
    stateRoot: mkdtempSync(join(tmpdir(), 'nstance-bench-fleet-')),
    pollMs: config.pollMs,
    discovery: config.discovery,
    healthIntervalMs: config.healthIntervalMs,
    userdataConcurrency: config.userdataConcurrency,
    log,
  });
  send({ type: 'ready' });
  const timer = setInterval(() => send({ type: 'stats', at: Date.now(), stats: fleet.stats(), agentErrors: { ...agentErrors } }), config.statsMs);
  const stop = async () => {
    clearInterval(timer);
    await fleet.stop();
    send({ type: 'stopped', at: Date.now(), stats: fleet.stats(), agentErrors });
    destroyAwsClients(aws);
    process.disconnect?.();
    process.exit(0);
  };
  process.on('message', (m: FleetCommand) => {
    if (m.type === 'launched') fleet.launched(m.ids);
    else if (m.type === 'terminated') fleet.terminated(m.ids);
    else if (m.type === 'stop') void stop();
  });
  process.once('SIGTERM', () => void stop());
  // The parent is gone (killed): nothing is left to report to.
  process.once('disconnect', () => process.exit(0));
}

if (require.main === module) {
  main().catch((err: Error) => {
    process.send?.({ type: 'failed', error: err.stack ?? err.message } satisfies FleetMessage);
    process.exit(1);
  });
}
