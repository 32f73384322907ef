/** The `nstance leader` command group, registered by client/cli/main.ts. */
import { Command } from 'commander';
import { json, table } from '../cli/output';
import { currentRun, linkLines, uiBaseUrl } from '../cli/ui-links';
import { leaderWorkflowId } from '../../common/names';
import { clientEnv, connectClient } from '../connection';
import { incompleteHandoff, leaderView, requestHandoff } from './leader';

export interface LeaderCliDeps {
  actor: () => string;
  shardFrom: (options: { shard?: string }) => string;
}

async function withClient<T>(body: (client: Awaited<ReturnType<typeof connectClient>>['client']) => Promise<T>): Promise<T> {
  const { client, close } = await connectClient(clientEnv());
  try {
    return await body(client);
  } finally {
    await close();
  }
}

export function leaderCommand(deps: LeaderCliDeps): Command {
  const leader = new Command('leader')
    .description('the shard leader: worker, EC2 instance, epoch, since, and candidates with their last-seen time')
    .option('--shard <shard>', 'shard (default NSTANCE_SHARD)')
    .option('--json', 'machine-readable output')
    .action(async (options: { shard?: string; json?: boolean }) => {
      const view = await withClient((client) => leaderView(client, deps.shardFrom(options)));
      if (options.json) return void process.stdout.write(`${json(view)}\n`);
      const l = view.leader;
      process.stdout.write(
        `shard ${view.shard}: leader ${l ? `${l.workerId} (instance ${l.ec2InstanceId ?? '-'}) at epoch ${l.epoch} since ${l.since}` : 'none'}` +
          `; leader network ${view.interfaceId ?? '-'}; heartbeat timeout ${view.heartbeatTimeoutMs} ms; ${view.handoffs} handoffs\n`,
      );
      if (view.lastHandoff) {
        const h = view.lastHandoff;
        process.stdout.write(`last handoff: ${h.from ?? '-'} -> ${h.to} (epoch ${h.epoch}, ${h.reason}${h.durationMs !== undefined ? `, ENI attached ${h.durationMs} ms after detection` : ''})\n`);
      }
      if (view.lastError) process.stdout.write(`last error: ${view.lastError}\n`);
      if (view.networkRepair) {
        const r = view.networkRepair;
        process.stdout.write(`leader network not in place for epoch ${r.epoch}: ${r.attempts} attempts, next at ${new Date(r.nextAttemptAt).toISOString()}\n`);
      }
      process.stdout.write(
        `${table(['worker', 'ec2 instance', 'agent address', 'role', 'last seen'], view.candidates.map((c) => [c.workerId, c.ec2InstanceId, c.agentAddress, c.role, c.lastSeen]))}\n`,
      );
    });
  leader
    .command('handoff')
    .description('graceful handoff: the leader stops serving, then the leader network moves to the next (or given) worker')
    .option('--to <worker>', 'the worker to lead next (default: the next live candidate)')
    .option('--shard <shard>', 'shard (default NSTANCE_SHARD)')
    .option('--timeout <ms>', 'give up waiting after this many milliseconds', '60000')
    .option('--json', 'machine-readable output')
    .action(async (_options: unknown, cmd: Command) => {
      // `leader` has --json/--shard too and commander gives them to the parent: read both levels.
      const options = cmd.optsWithGlobals<{ to?: string; shard?: string; timeout: string; json?: boolean; uiUrl?: string }>();
      const shard = deps.shardFrom(options);
      const { result, run } = await withClient(async (client) => {
        const result = await requestHandoff(client, shard, { to: options.to, actor: deps.actor(), timeoutMs: Number(options.timeout) });
        return { result, run: await currentRun(client, leaderWorkflowId(shard)) };
      });
      const env = clientEnv();
      if (options.json) process.stdout.write(`${json(result)}\n`);
      else process.stdout.write(`shard ${shard}: leader ${result.from ?? '-'} -> ${result.to} at epoch ${result.epoch}\n${linkLines(uiBaseUrl(options.uiUrl, env.address), env.namespace, [run])}`);
      // Leadership moved but the handoff did not finish (ENI not moved, record not written):
      // scripts must see that, so it fails (main prints it and exits 1) although a new epoch leads.
      const incomplete = incompleteHandoff(result);
      if (incomplete) throw new Error(incomplete);
    });
  return leader;
}
