/**
 * `nstance agent` (the agent on an instance) and `nstance fleet` (the simulated
 * fleet, for the demo): both run until SIGINT/SIGTERM.
 */
import { readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { awsClientOptionsFromEnv, createAwsClients, destroyAwsClients } from '../../adapters/aws/clients';
import { parseDuration } from '../../common/duration';
import { AGENT_STATE_DIR } from '../../common/config/file-paths';
import { Agent } from './agent';
import { startFleet } from './fleet-start';
import { DEFAULT_IMDS_URL, IMDS_URL_ENV, ImdsNotices } from './imds';
import { loadState } from './state';

function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    // Signal listeners do not keep Node running, and the agents' and the fleet's timers
    // are unref'd (they must not hold up a test process): without this the command
    // exits as soon as nothing is in flight, silently, before any agent registered.
    const keepAlive = setInterval(() => undefined, 60_000);
    const done = (signal: string) => {
      clearInterval(keepAlive);
      resolve(signal);
    };
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
}

function durationMs(text: string | undefined): number | undefined {
  return text === undefined ? undefined : parseDuration(text);
}

export function agentCommand(): Command {
  return new Command('agent')
    .description('run the instance agent: register with a nonce, then report health and fetch files over mTLS')
    .requiredOption('--register <addr>', 'agent API registration address, host:port (the leader network IP)')
    .option('--nonce <nonce>', 'single-use registration nonce from userdata (not needed once registered)')
    .option('--ca-file <file>', 'cluster CA certificate (PEM); default: the one saved at registration, else the CA the nonce pins')
    .option('--state-dir <dir>', 'where the key and certificate are kept', AGENT_STATE_DIR)
    .option('--files-root <dir>', 'root under which the files the agent API delivers are written, at the paths the config names', '/')
    .option('--connect <addr>', 'dial this host:port instead of --register (the server certificate must still name --register)')
    .option('--ip <ip>', 'IP address to report')
    .option('--hostname <name>', 'hostname to report', hostname())
    .option('--interval <duration>', 'health report interval (default: what the agent API says)')
    .addOption(new Option('--imds-url <url>', 'instance metadata service polled (IMDSv2) for spot termination notices').env(IMDS_URL_ENV).default(DEFAULT_IMDS_URL))
    .option('--notice-interval <duration>', 'how often to poll IMDS for a termination notice', '5s')
    .option('--once', 'register, fetch files, report health once, and exit')
    .action(async (o: { register: string; nonce?: string; caFile?: string; stateDir: string; filesRoot: string; connect?: string; ip?: string; hostname: string; interval?: string; imdsUrl: string; noticeInterval: string; once?: boolean }) => {
      // Without --ca-file (or a saved registration) the agent discovers the CA pinned by its nonce.
      const caPem = o.caFile ? readFileSync(o.caFile, 'utf8') : (await loadState(o.stateDir))?.caPem;
      const log = (line: string) => process.stderr.write(`nstance agent: ${line}\n`);
      const agent = new Agent({
        registerAddress: o.register,
        connectAddress: o.connect,
        nonce: o.nonce,
        caPem,
        stateDir: o.stateDir,
        filesRoot: o.filesRoot,
        ip: o.ip,
        hostname: o.hostname,
        healthIntervalMs: durationMs(o.interval),
        // A spot interruption is read from IMDS and reported with its deadline; off EC2 IMDS never answers (no notice).
        notices: new ImdsNotices({ baseUrl: o.imdsUrl, log }),
        noticePollMs: parseDuration(o.noticeInterval),
        log,
      });
      if (o.once) {
        const state = await agent.register();
        const files = await agent.fetchFiles();
        const notice = await agent.checkNotice();
        await agent.reportHealth();
        const noticed = notice ? `, termination notice (reclaimed at ${notice.deadline})` : '';
        process.stdout.write(`${state.identity.instanceId}: registered (certificate ${state.identity.serialNumber}), ${files.length} files, health reported${noticed}\n`);
        return;
      }
      agent.start();
      const signal = await untilSignal();
      agent.stop();
      log(`stopped (${signal})`);
    });
}

export function fleetCommand(): Command {
  return new Command('fleet')
    .description('simulate a fleet: one in-process agent per running instance of a shard, booted from its userdata (env: AWS_*)')
    .option('--shard <shard>', 'shard (default NSTANCE_SHARD)')
    .option('--bucket <bucket>', 'bucket holding cluster/ca.crt (default NSTANCE_BUCKET)')
    .requiredOption('--connect <addr>', 'where the agent API really listens, e.g. 127.0.0.1:8443 (userdata names the leader IP)')
    .option('--state-root <dir>', 'agent state directories (default: a new temp dir)')
    .option('--interval <duration>', 'health report interval (default: what the agent API says)')
    .action(async (o: { shard?: string; bucket?: string; connect: string; stateRoot?: string; interval?: string }) => {
      const shard = o.shard ?? process.env.NSTANCE_SHARD;
      const bucket = o.bucket ?? process.env.NSTANCE_BUCKET;
      if (!shard || !bucket) throw new Error('pass --shard and --bucket (or set NSTANCE_SHARD and NSTANCE_BUCKET)');
      const aws = createAwsClients(awsClientOptionsFromEnv());
      const log = (line: string) => process.stderr.write(`nstance fleet: ${line}\n`);
      try {
        const fleet = await startFleet({
          aws,
          bucket,
          shard,
          resolveAddress: () => o.connect,
          stateRoot: o.stateRoot ?? mkdtempSync(join(tmpdir(), 'nstance-fleet-')),
          healthIntervalMs: durationMs(o.interval),
          log,
        });
        log(`watching shard ${shard}; agents dial ${o.connect}`);
        await untilSignal();
        await fleet.stop();
        log(`stopped; ${fleet.registered().length} agents had registered`);
      } finally {
        destroyAwsClients(aws);
      }
    });
}
