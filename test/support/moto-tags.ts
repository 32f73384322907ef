/**
 * The environment for the test stack's moto: its tag look-up by resource id
 * (test/support/moto/sitecustomize.py) instead of a scan of every tag in the region, which
 * grows with every instance the suite or a benchmark leaves behind. What moto answers is
 * unchanged. `NSTANCE_TEST_MOTO_INDEXED_TAGS=0` runs moto as shipped.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT } from './processes';

export const MOTO_INDEXED_TAGS_SWITCH = 'NSTANCE_TEST_MOTO_INDEXED_TAGS';

export function motoEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  if (!motoTagsIndexed(env)) return env;
  // The source folder, also when this runs compiled from dist/ (the benchmarks): the compiler copies no .py file.
  const folder = path.join(REPO_ROOT, 'test', 'support', 'moto');
  if (!existsSync(path.join(folder, 'sitecustomize.py'))) throw new Error(`moto's tag index is on but ${folder}/sitecustomize.py is missing (${MOTO_INDEXED_TAGS_SWITCH}=0 runs moto as shipped)`);
  const pythonPath = [folder, env.PYTHONPATH].filter(Boolean).join(path.delimiter);
  return { ...env, NSTANCE_MOTO_INDEXED_TAGS: '1', PYTHONPATH: pythonPath };
}

export function motoTagsIndexed(env: NodeJS.ProcessEnv): boolean {
  return env[MOTO_INDEXED_TAGS_SWITCH] !== '0';
}

/** What moto writes once the index is in place (test/support/moto/sitecustomize.py). */
export const MOTO_INDEXED_TAGS_MARKER = 'nstance sitecustomize: indexed EC2 tag look-up on';
