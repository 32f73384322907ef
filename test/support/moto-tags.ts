/**
 * The environment for the test stack's moto: its tag look-up by resource id
 * (test/support/moto/sitecustomize.py) instead of a scan of every tag in the region, which
 * grows with every instance the suite or a benchmark leaves behind. What moto answers is
 * unchanged. `NSTANCE_TEST_MOTO_INDEXED_TAGS=0` runs moto as shipped.
 */
import * as path from 'node:path';

export const MOTO_INDEXED_TAGS_SWITCH = 'NSTANCE_TEST_MOTO_INDEXED_TAGS';

export function motoEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  if (!motoTagsIndexed(env)) return env;
  const pythonPath = [path.join(__dirname, 'moto'), env.PYTHONPATH].filter(Boolean).join(path.delimiter);
  return { ...env, NSTANCE_MOTO_INDEXED_TAGS: '1', PYTHONPATH: pythonPath };
}

export function motoTagsIndexed(env: NodeJS.ProcessEnv): boolean {
  return env[MOTO_INDEXED_TAGS_SWITCH] !== '0';
}
