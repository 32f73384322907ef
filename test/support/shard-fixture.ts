import { applyConfig, type ApplyResult } from '../../client/ops/apply';
import { scaleGroup, type ScaleResult } from '../../client/ops/scale';
import { groupStatuses } from '../../client/ops/status';
import { TAG } from '../../common/names';
import { ALIVE_STATES, eventually, shardInstances, tagOf } from './emulator';
import type { GroupRef } from '../../common/types';
import type { SeedResult } from '../../scripts/seed-emulator';
import { configText, seedShard, terminateShardWorkflows, testConfig, type TestConfigOptions } from './fixtures';
import { createHarness, type Harness } from './harness';
import { Registrar } from './registrar';
import { parseConfigText, type NstanceConfig } from '../../common/config';
import { proveCallsAllowed } from './iam-proof';
import { asOperator } from './operator-calls';

export type ShardConfigOptions = Omit<TestConfigOptions, 'shard' | 'bucket'>;

export interface ShardFixtureOptions {
  /** Run a shard worker in this process for the whole file. */
  worker?: boolean;
  /** Stand in for the agent API: signal "registered" for every running instance of default/web. */
  registrar?: boolean;
  /** A config applied once everything above runs. */
  config?: ShardConfigOptions;
}

/**
 * One test file's shard: its own harness (Temporal client, fault-wrapped AWS clients),
 * seeded emulator resources and, optionally, a worker, a registrar and a first config.
 * The fields are set in beforeAll, so read them inside tests and hooks only.
 */
export interface ShardFixture {
  readonly shard: string;
  /** default/web of this shard, the group every test config has. */
  readonly ref: GroupRef;
  readonly h: Harness;
  readonly client: Harness['client'];
  readonly aws: Harness['aws'];
  readonly faults: Harness['faults'];
  readonly bucket: string;
  readonly seed: SeedResult;
  readonly registrar: Registrar;
  /** The test config of this shard (its shard and bucket filled in), to adjust before applying. */
  config(options: ShardConfigOptions): Record<string, unknown>;
  /** Applies a config as `nstance config apply` would: the test config built from options, or one built by config(). */
  apply(config: ShardConfigOptions | Record<string, unknown>): Promise<ApplyResult>;
  /**
   * The IAM proof also grants the policy of `otherShard` (this file's config with that shard id): for tests
   * that act, as a second shard would, on instances tagged with another shard.
   */
  alsoProveShard(otherShard: string): void;
  /** Scales default/web as `nstance group scale` would. */
  scale(size: number): Promise<ScaleResult>;
  /**
   * Waits until the emulator holds exactly the members of the shard's groups, in any
   * state but terminated (a stopped leftover is a leak): no leak, no duplicate.
   */
  expectEmulatorMatchesGroups(): Promise<void>;
}

/** Declares a shard fixture for the calling test file (registers its beforeAll/afterAll). */
export function useShard(prefix: string, options: ShardFixtureOptions = {}): ShardFixture {
  const shard = `${prefix}-${Date.now().toString(36)}`;
  const ref: GroupRef = { shard, tenant: 'default', group: 'web' };
  let harness: Harness | undefined;
  let seeded: SeedResult | undefined;
  let registrar: Registrar | undefined;
  /** Every config this file applied: its AWS calls must be allowed by the generated IAM policy of one of them. */
  const applied: NstanceConfig[] = [];

  const ready = <T>(value: T | undefined, name: string): T => {
    if (value === undefined) throw new Error(`shard fixture ${shard}: ${name} is not ready (read it inside a test or hook)`);
    return value;
  };

  const fixture: ShardFixture = {
    shard,
    ref,
    get h() {
      return ready(harness, 'harness');
    },
    get client() {
      return fixture.h.client;
    },
    get aws() {
      return fixture.h.aws;
    },
    get faults() {
      return fixture.h.faults;
    },
    get bucket() {
      return fixture.h.bucket;
    },
    get seed() {
      return ready(seeded, 'seed');
    },
    get registrar() {
      return ready(registrar, 'registrar (pass { registrar: true })');
    },
    config(config) {
      return testConfig(fixture.seed, { shard, bucket: fixture.bucket, ...config });
    },
    apply(config) {
      const built = isOptions(config) ? fixture.config(config) : config;
      const text = configText(built);
      try {
        applied.push(parseConfigText(text, 'config.jsonc'));
      } catch {
        // An invalid config (a test of the rejection) grants nothing.
      }
      // As the operator: the zone check and the config writes are `config apply`'s, proven against the operator's policy.
      return asOperator(() => applyConfig({ client: fixture.client, s3: fixture.aws.s3, ec2: fixture.aws.ec2, text, file: 'config.jsonc', actor: 'test' }));
    },
    alsoProveShard(otherShard) {
      const base = applied[applied.length - 1];
      if (base) applied.push({ ...base, shard: { ...base.shard, id: otherShard } });
    },
    scale(size) {
      return scaleGroup({ client: fixture.client, s3: fixture.aws.s3, bucket: fixture.bucket, group: ref, size, actor: 'test' });
    },
    async expectEmulatorMatchesGroups() {
      const view = async () => {
        const members = (await groupStatuses(fixture.client, shard, { members: true })).flatMap((g) => g.members);
        const held = await shardInstances(fixture.aws.ec2, shard, ALIVE_STATES);
        return {
          group: members.map((m) => `${m.instanceId}=${m.ec2InstanceId}`).sort(),
          emulator: held.map((i) => `${tagOf(i, TAG.instanceId)}=${i.InstanceId}`).sort(),
        };
      };
      const matched = await eventually('the emulator holds exactly the groups\' members', async () => {
        const v = await view();
        return JSON.stringify(v.group) === JSON.stringify(v.emulator) ? v : undefined;
      }, 30_000).catch(async () => view());
      expect(matched.emulator).toEqual(matched.group);
    },
  };

  beforeAll(async () => {
    harness = await createHarness({ shard, bucket: `nstance-${shard}` });
    seeded = await seedShard(harness);
    if (options.worker) await harness.startWorker();
    if (options.registrar) registrar = new Registrar(harness.client, ref).start();
    if (options.config) await fixture.apply(options.config);
  });

  afterAll(async () => {
    await registrar?.stop();
    if (!harness) return;
    await terminateShardWorkflows(harness.client, shard);
    await harness.close();
    // The IAM proof: every AWS call this file's scenarios made, against the policy `nstance iam policy` prints.
    if (applied.length > 0 && process.env.NSTANCE_IAM_PROOF !== 'off') await proveCallsAllowed(harness.faults.calls, applied);
  });

  return fixture;
}

/** Options always have a size and never the `cluster` section every built config has. */
function isOptions(config: ShardConfigOptions | Record<string, unknown>): config is ShardConfigOptions {
  return !('cluster' in config);
}
