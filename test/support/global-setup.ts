/**
 * Jest globalSetup of the `integration` project: starts a private Temporal dev server
 * (in-memory, its Web UI on a free port) and a private moto, each on free loopback ports, and publishes
 * their addresses through process.env, which jest passes on to every test file (read
 * them with stackEnv()). Private servers keep tests away from a developer's
 * `scripts/stack.sh` stack and let two checkouts run their tests at once.
 *
 * No server may outlive jest: global-teardown.ts stops them, an exit hook covers a
 * jest that exits without teardown, and a detached watchdog covers a jest that is
 * killed outright (SIGKILL, a closed terminal).
 */
import { execFile, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { SEARCH_ATTRIBUTES } from '../../common/names';
import { MOTO_INDEXED_TAGS_MARKER, motoEnvironment, motoTagsIndexed } from './moto-tags';
import { useTestPayloadKey } from './payload-key';
import { STACK_ENV_VARS, STACK_MARKER_VAR } from './stack-env';

/** Process groups to kill at teardown (comma-separated), and the log directory. */
export const STACK_PGIDS_VAR = 'NSTANCE_TEST_STACK_PGIDS';
/** The same process groups by server name (temporal=…,moto=…), for the benchmarks' CPU figures. */
export const STACK_SERVER_PGIDS_VAR = 'NSTANCE_TEST_STACK_SERVER_PGIDS';
export const STACK_LOG_DIR_VAR = 'NSTANCE_TEST_STACK_LOGS';
/** The test stack's Temporal Web UI (http://127.0.0.1:<port>). */
export const STACK_UI_VAR = 'NSTANCE_TEST_TEMPORAL_UI';

const HOST = '127.0.0.1';
const REGION = 'us-east-1';
const START_TIMEOUT_MS = 60_000;
const START_ATTEMPTS = 3;

interface Tools {
  temporal: string;
  testServer: string;
  moto: string;
}

export default async function globalSetup(): Promise<void> {
  const root = repoRoot();
  const tools = ensureTools(root);
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nstance-test-stack-'));
  const pgids: number[] = [];
  process.env[STACK_PGIDS_VAR] = '';
  // Registered before anything starts, so a failure half-way still cleans up. It reads
  // the variable (not `pgids`) because teardown empties it once the groups are gone.
  process.once('exit', () => killGroups(stackProcessGroups(), 'SIGKILL'));
  process.env[STACK_LOG_DIR_VAR] = logDir;

  try {
    // Every worker, CLI and client of the suite encrypts payloads, as in production (the history scan checks it).
    useTestPayloadKey();
    // The Web UI on a free port of its own, for the browser test (test/support/browser.ts); it idles otherwise.
    // No news fetch: the test stack stays off the network. Payloads (summaries too) are encrypted, so the UI
    // decodes them through the project's codec server, as users run it (loopback, no token).
    const uiPort = await freePort();
    const codec = await startWithRetry('codec-server', logDir, pgids, (port) => ({
      command: process.execPath,
      args: [path.join(root, 'dist', 'client', 'cli', 'main.js'), 'codec-server', '--host', HOST, '--port', String(port), '--ui-origin', `http://${HOST}:${uiPort}`],
      ready: () => httpOk(`http://${HOST}:${port}/decode`, true),
    }));
    const temporal = await startWithRetry('temporal', logDir, pgids, async (port) => ({
      command: tools.temporal,
      args: [
        'server', 'start-dev', '--ip', HOST, '--port', String(port),
        '--ui-ip', HOST, '--ui-port', String(uiPort), '--ui-disable-news-fetch', '--ui-codec-endpoint', `http://${HOST}:${codec}`,
        '--namespace', 'default', '--log-level', 'warn',
        ...SEARCH_ATTRIBUTES.flatMap((name) => ['--search-attribute', `${name}=Keyword`]),
        // Suggest continue-as-new early, so every long-lived workflow crosses it in the tests.
        // (NSTANCE_STACK_SUGGEST_CONTINUE_AS_NEW_AT overrides it: the scale benchmark runs at Temporal's default.)
        '--dynamic-config-value', `limit.historyCount.suggestContinueAsNew=${process.env.NSTANCE_STACK_SUGGEST_CONTINUE_AS_NEW_AT || CONTINUE_AS_NEW_SUGGESTED_AT}`,
      ],
      ready: () => temporalHealthy(tools.temporal, `${HOST}:${port}`),
    }));
    const moto = await startWithRetry('moto', logDir, pgids, (port) => ({
      command: tools.moto,
      args: ['-H', HOST, '-p', String(port)],
      env: motoEnvironment(process.env),
      ready: () => httpOk(`http://${HOST}:${port}/moto-api/`),
      started: (log) => {
        if (motoTagsIndexed(process.env) && !log.includes(MOTO_INDEXED_TAGS_MARKER)) throw new Error(`moto started without its tag index (no "${MOTO_INDEXED_TAGS_MARKER}" in its log)`);
      },
    }));
    startWatchdog(pgids);

    Object.assign(process.env, {
      [STACK_ENV_VARS.temporalAddress]: `${HOST}:${temporal}`,
      [STACK_UI_VAR]: `http://${HOST}:${uiPort}`,
      TEMPORAL_NAMESPACE: 'default',
      [STACK_ENV_VARS.awsEndpoint]: `http://${HOST}:${moto}`,
      [STACK_ENV_VARS.region]: REGION,
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      [STACK_ENV_VARS.temporalBin]: tools.temporal,
      [STACK_ENV_VARS.testServerBin]: tools.testServer,
      NSTANCE_MOTO_BIN: tools.moto,
      [STACK_MARKER_VAR]: '1',
    });
    // Tests must never sign requests with a developer's real session or profile.
    delete process.env.AWS_SESSION_TOKEN;
    delete process.env.AWS_PROFILE;
  } catch (err) {
    killGroups(pgids, 'SIGKILL');
    throw err;
  }
}

/** The nearest directory above this file that holds scripts/tools.sh. */
function repoRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'scripts', 'tools.sh'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no scripts/tools.sh above ${__dirname}`);
  }
}

function readToolsEnv(root: string): Tools | undefined {
  const file = path.join(root, '.tools', 'env.sh');
  if (!fs.existsSync(file)) return undefined;
  const vars = new Map<string, string>();
  for (const match of fs.readFileSync(file, 'utf8').matchAll(/^export (\w+)='([^']*)'$/gm)) {
    vars.set(match[1] as string, match[2] as string);
  }
  const tools = {
    temporal: vars.get('NSTANCE_TEMPORAL_BIN') ?? '',
    testServer: vars.get('NSTANCE_TEST_SERVER_BIN') ?? '',
    moto: vars.get('NSTANCE_MOTO_BIN') ?? '',
  };
  return Object.values(tools).every((bin) => bin && fs.existsSync(bin)) ? tools : undefined;
}

function ensureTools(root: string): Tools {
  const existing = readToolsEnv(root);
  if (existing) return existing;
  // --no-npm: jest is already running from node_modules; reinstalling it now would break it.
  const result = spawnSync('bash', [path.join(root, 'scripts', 'tools.sh'), '--no-npm'], { cwd: root, stdio: 'inherit' });
  const tools = result.status === 0 ? readToolsEnv(root) : undefined;
  if (!tools) throw new Error(`scripts/tools.sh --no-npm failed (exit ${result.status}); see .tools/install.log`);
  return tools;
}

interface ServerSpec {
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  ready: () => Promise<boolean>;
  /** Once it answers: a check of what it wrote to its log (throws when it is not what was asked for). */
  started?: (log: string) => void;
}

/**
 * A free port can be taken by someone else between probing and binding, so a server
 * that dies during startup is retried on fresh ports before giving up.
 */
async function startWithRetry(
  name: string,
  logDir: string,
  pgids: number[],
  spec: (port: number) => ServerSpec | Promise<ServerSpec>,
): Promise<number> {
  let lastError: Error | undefined;
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    const port = await freePort();
    const logFile = path.join(logDir, `${name}.${attempt}.log`);
    try {
      await startServer(name, logFile, pgids, await spec(port));
      return port;
    } catch (err) {
      lastError = err as Error;
    }
  }
  throw lastError ?? new Error(`${name} did not start`);
}

async function startServer(name: string, logFile: string, pgids: number[], spec: ServerSpec): Promise<void> {
  const log = fs.openSync(logFile, 'a');
  // detached: its own process group, so teardown can kill it with anything it spawns.
  const child = spawn(spec.command, spec.args, { detached: true, stdio: ['ignore', log, log], env: spec.env ?? process.env });
  fs.closeSync(log);
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not spawn ${spec.command}`);
  pgids.push(pid);
  process.env[STACK_PGIDS_VAR] = pgids.join(',');

  let exited: string | undefined;
  child.once('exit', (code, signal) => (exited = `exit code ${code ?? signal}`));
  child.once('error', (err) => (exited = err.message));

  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!(await spec.ready())) {
    if (exited !== undefined || Date.now() > deadline) {
      killGroups([pid], 'SIGKILL');
      pgids.splice(pgids.indexOf(pid), 1);
      process.env[STACK_PGIDS_VAR] = pgids.join(',');
      const why = exited ?? `no answer within ${START_TIMEOUT_MS / 1000}s`;
      throw new Error(`${name} failed to start (${why}); ${logFile}:\n${tail(logFile)}`);
    }
    await sleep(200);
  }
  if (spec.started) {
    try {
      spec.started(fs.readFileSync(logFile, 'utf8'));
    } catch (err) {
      killGroups([pid], 'SIGKILL');
      pgids.splice(pgids.indexOf(pid), 1);
      process.env[STACK_PGIDS_VAR] = pgids.join(',');
      throw err;
    }
  }
  const named = { ...serverGroupsByName(), [name]: pid };
  process.env[STACK_SERVER_PGIDS_VAR] = Object.entries(named).map(([n, g]) => `${n}=${g}`).join(',');
}

function tail(file: string, lines = 20): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

function temporalHealthy(bin: string, address: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(bin, ['operator', 'cluster', 'health', '--address', address], { timeout: 5_000 }, (err) => resolve(!err));
  });
}

/** The server at `url` answers 2xx (or anything at all, with `anyStatus`). */
async function httpOk(url: string, anyStatus = false): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    await response.arrayBuffer();
    return anyStatus || response.ok;
  } catch {
    return false;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** History length at which the test server suggests continue-as-new (production default: 4 Ki events). */
export const CONTINUE_AS_NEW_SUGGESTED_AT = 150;

/** The process groups global setup started (servers and watchdog), from process.env. */
/** The process group of each server the stack started, by the name it was started under ("temporal", "moto", ...). */
export function serverGroupsByName(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const entry of (process.env[STACK_SERVER_PGIDS_VAR] ?? '').split(',').filter(Boolean)) {
    const [name, pgid] = entry.split('=');
    if (name && pgid) out[name] = Number(pgid);
  }
  return out;
}

export function stackProcessGroups(): number[] {
  return (process.env[STACK_PGIDS_VAR] ?? '')
    .split(',')
    .filter(Boolean)
    .map(Number);
}

export function killGroups(pgids: readonly number[], signal: NodeJS.Signals): void {
  for (const pgid of pgids) {
    try {
      process.kill(-pgid, signal);
    } catch {
      // Already gone.
    }
  }
}

/**
 * A tiny detached process that kills the servers once jest's process is gone. It
 * polls rather than waiting on a pipe because a SIGKILLed parent runs no code at all.
 */
function startWatchdog(pgids: readonly number[]): void {
  const script = `
    const [parent, ...groups] = process.argv.slice(1).map(Number);
    const alive = (pid) => { try { process.kill(pid, 0); return true; } catch { return false; } };
    setInterval(() => {
      if (alive(parent)) return;
      for (const g of groups) { try { process.kill(-g, 'SIGKILL'); } catch {} }
      process.exit(0);
    }, 1000);
  `;
  const watchdog = spawn(process.execPath, ['-e', script, String(process.pid), ...pgids.map(String)], {
    detached: true,
    stdio: 'ignore',
  });
  watchdog.unref();
  // Its group goes last in the list: teardown then stops the watchdog with the servers.
  if (watchdog.pid !== undefined) {
    process.env[STACK_PGIDS_VAR] = [...pgids, watchdog.pid].join(',');
  }
}
