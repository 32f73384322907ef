/**
 * The benchmark's shard config: Nstance's example config (what a new user starts from),
 * with the emulator's real ids filled in (scripts/seed-emulator.ts), the benchmark's own
 * shard, bucket and (large) subnets, the group at size 0 (sizes are set with
 * `nstance group scale`), and the variations a phase asks for.
 */
import * as fs from 'node:fs';
import { applyEdits, modify, parse, type JSONPath } from 'jsonc-parser';
import { findExampleConfig } from '../../scripts/seed/example-config';
import { renderSeededConfig, type SeedResult } from '../../scripts/seed-emulator';

export interface ConfigVariant {
  /** shard.expiry for the instances created while this config holds. */
  expiry?: { eligible_age: string; forced_age: string };
  /** groups.default.web.max_surge (only when the build knows the field). */
  maxSurge?: string;
}

export interface BaseConfig {
  seed: SeedResult;
  shard: string;
  subnetIds: string[];
  createRateLimit?: string;
  /** Start from this file instead of the example config. */
  path?: string;
}

export function exampleConfigPath(repoRoot: string, override?: string): string {
  return override ?? findExampleConfig(repoRoot);
}

export function benchConfigText(base: BaseConfig, repoRoot: string, variant: ConfigVariant = {}): string {
  let text = renderSeededConfig(fs.readFileSync(exampleConfigPath(repoRoot, base.path), 'utf8'), base.seed);
  const set = (path: JSONPath, value: unknown) => {
    text = applyEdits(text, modify(text, path, value, { formattingOptions: { insertSpaces: true, tabSize: 2 } }));
  };
  set(['shard', 'id'], base.shard);
  set(['shard', 'subnet_pools', 'private'], base.subnetIds);
  set(['groups', 'default', 'web', 'size'], 0);
  if (base.createRateLimit) set(['shard', 'create_rate_limit'], base.createRateLimit);
  if (variant.expiry) set(['shard', 'expiry'], variant.expiry);
  if (variant.maxSurge) set(['groups', 'default', 'web', 'max_surge'], variant.maxSurge);
  return text;
}

/** The settings a reader of the results needs (shard timings, the group), from a config text. */
export function configSummary(text: string): Record<string, unknown> {
  const config = parse(text) as { shard?: Record<string, unknown>; groups?: { default?: { web?: Record<string, unknown> } }; templates?: Record<string, { instance_type?: string }> };
  const shard = config.shard ?? {};
  const pick = (keys: string[]) => Object.fromEntries(keys.filter((k) => shard[k] !== undefined).map((k) => [k, shard[k]]));
  return {
    shard: pick(['health_check_interval', 'default_drain_timeout', 'create_rate_limit', 'expiry', 'garbage_collection']),
    group: config.groups?.default?.web,
    instanceType: config.templates?.web?.instance_type,
  };
}
