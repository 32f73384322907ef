/**
 * Where Nstance's example config is. Its source of truth sits beside the repo
 * (../shared/examples); the repo carries a copy (examples/) so a checkout without
 * that folder still runs the demo and the tests. A unit test keeps the copy equal
 * to the original wherever both exist.
 */
import * as fs from 'fs';
import * as path from 'path';

export const EXAMPLE_CONFIG = path.join('examples', 'config.example.jsonc');

/** Every `shared/examples/config.example.jsonc` above `from`, nearest first. */
export function sharedExampleConfig(from: string): string | undefined {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'shared', EXAMPLE_CONFIG);
    if (fs.existsSync(candidate)) return candidate;
    if (path.dirname(dir) === dir) return undefined;
  }
}

/** The repo's own copy, found from anywhere inside the repo. */
export function bundledExampleConfig(from: string): string | undefined {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) {
      const candidate = path.join(dir, EXAMPLE_CONFIG);
      return fs.existsSync(candidate) ? candidate : undefined;
    }
    if (path.dirname(dir) === dir) return undefined;
  }
}

/** NSTANCE_EXAMPLE_CONFIG, else the shared original, else the repo's copy. */
export function findExampleConfig(from: string, env: NodeJS.ProcessEnv = process.env): string {
  const found = env.NSTANCE_EXAMPLE_CONFIG ?? sharedExampleConfig(from) ?? bundledExampleConfig(from);
  if (!found) throw new Error(`cannot find ${EXAMPLE_CONFIG} (shared/ above ${from}, or the repo's copy); set NSTANCE_EXAMPLE_CONFIG`);
  return found;
}
