/** The scale benchmark's knobs, read from BENCH_* environment variables (documented in scripts/bench.sh). */
import { parseDuration } from '../../common/duration';

export interface ScaleOptions {
  /** Group sizes measured 0 → N, in order. */
  sizes: number[];
  /** Size of the expiry-replacement run; 0 skips it. */
  replaceSize: number;
  /** The group's max_surge in the replacement run (count or percent), when the build knows the field. */
  maxSurge: string;
  /** forced_age of the replacement run's cohort; undefined: derived from the scale-up of that size. */
  replaceExpiryMs?: number;
  /** Concurrent RunInstances calls of the direct-SDK floor. */
  floorConcurrency: number;
  /** Give up on a phase after this long. */
  phaseTimeoutMs: number;
  /** How long a scaled-up group is watched in steady state (health reports flowing) before it is scaled down. */
  holdMs: number;
  /** How often the simulated fleet looks for new instances. */
  fleetPollMs: number;
  /** `told`: the benchmark tells the fleet what EC2 launched (from the proxy's ledger); `poll`: it describes the shard. */
  fleetDiscovery: 'poll' | 'told';
  /** Overrides the health interval the agent API hands out (unset: the config's health_check_interval). */
  fleetHealthIntervalMs?: number;
  fleetUserdataConcurrency: number;
  /** How often EC2, the group and the processes are sampled. */
  sampleMs: number;
  /** shard.create_rate_limit override (unset: the example config's). */
  createRateLimit?: string;
  /** A config file to start from instead of Nstance's example config. */
  configPath?: string;
  /** History length at which the dev server suggests continue-as-new (Temporal's default: 4 Ki events). */
  suggestContinueAsNewAt: number;
  leaderHeartbeatTimeout: string;
  out: string;
  keepLogs: boolean;
}

function positiveInts(text: string, name: string): number[] {
  const sizes = text.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  if (sizes.length === 0 || sizes.some((n) => !Number.isInteger(n) || n <= 0)) throw new Error(`${name}="${text}": expected positive integers separated by commas, e.g. "500,2000"`);
  return sizes;
}

function int(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const text = env[name];
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name}="${text}": expected a whole number`);
  return n;
}

function duration(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const text = env[name];
  if (text === undefined || text === '') return undefined;
  try {
    return parseDuration(text);
  } catch (err) {
    throw new Error(`${name}="${text}": ${(err as Error).message}`);
  }
}

function fleetDiscovery(text: string | undefined): 'poll' | 'told' {
  if (text === undefined || text === '' || text === 'told') return 'told';
  if (text === 'poll') return 'poll';
  throw new Error(`BENCH_FLEET_DISCOVERY="${text}": expected "told" or "poll"`);
}

export function scaleOptions(env: NodeJS.ProcessEnv, defaultOut: string): ScaleOptions {
  // "none": only the replacement run (its cohort is scaled up as part of it).
  const sizes = env.BENCH_SIZES === 'none' ? [] : positiveInts(env.BENCH_SIZES ?? '500,2000', 'BENCH_SIZES');
  const replace = env.BENCH_REPLACE_SIZE;
  if (sizes.length === 0 && (replace === undefined || replace === '' || replace === 'off')) throw new Error('BENCH_SIZES=none measures only the replacement: give its size as BENCH_REPLACE_SIZE');
  const maxSurge = env.BENCH_MAX_SURGE ?? '10%';
  if (!/^\d+%?$/.test(maxSurge)) throw new Error(`BENCH_MAX_SURGE="${maxSurge}": expected a count or a percentage, e.g. "10%"`);
  return {
    sizes,
    replaceSize: replace === 'off' ? 0 : int(env, 'BENCH_REPLACE_SIZE', Math.max(...sizes)),
    maxSurge,
    replaceExpiryMs: duration(env, 'BENCH_REPLACE_EXPIRY'),
    floorConcurrency: Math.max(1, int(env, 'BENCH_FLOOR_CONCURRENCY', 20)),
    phaseTimeoutMs: duration(env, 'BENCH_PHASE_TIMEOUT') ?? 45 * 60_000,
    holdMs: duration(env, 'BENCH_HOLD') ?? 60_000,
    fleetPollMs: duration(env, 'BENCH_FLEET_POLL') ?? 1_000,
    fleetDiscovery: fleetDiscovery(env.BENCH_FLEET_DISCOVERY),
    fleetHealthIntervalMs: duration(env, 'BENCH_FLEET_HEALTH_INTERVAL'),
    fleetUserdataConcurrency: Math.max(1, int(env, 'BENCH_FLEET_USERDATA_CONCURRENCY', 8)),
    sampleMs: duration(env, 'BENCH_SAMPLE') ?? 1_000,
    createRateLimit: env.BENCH_CREATE_RATE_LIMIT || undefined,
    configPath: env.BENCH_CONFIG || undefined,
    suggestContinueAsNewAt: int(env, 'BENCH_SUGGEST_CONTINUE_AS_NEW_AT', 4096),
    leaderHeartbeatTimeout: env.BENCH_LEADER_HEARTBEAT_TIMEOUT ?? '4s',
    out: env.BENCH_OUT || defaultOut,
    keepLogs: env.BENCH_KEEP_LOGS === '1',
  };
}

/** A surge as a count for a group of `size`: "10%" rounds up, as Kubernetes' maxSurge does. */
export function surgeCount(maxSurge: string, size: number): number {
  return maxSurge.endsWith('%') ? Math.ceil((size * Number(maxSurge.slice(0, -1))) / 100) : Number(maxSurge);
}
