/**
 * Makes the moto a benchmark starts look up an instance's tags by its id (bench/moto/sitecustomize.py)
 * instead of scanning every tag in the region: at thousands of instances moto's scan, not the code
 * under test, would be what a benchmark measures. Call before global setup starts moto.
 * `<prefix>_MOTO_INDEXED_TAGS=0` runs moto as shipped.
 */
import * as path from 'node:path';
import { REPO_ROOT } from '../../test/support/processes';

export function useIndexedMotoTags(env: NodeJS.ProcessEnv, switchVar: string): boolean {
  if (env[switchVar] === '0') return false;
  process.env.NSTANCE_BENCH_MOTO_INDEXED_TAGS = '1';
  process.env.PYTHONPATH = [path.join(REPO_ROOT, 'bench', 'moto'), process.env.PYTHONPATH].filter(Boolean).join(path.delimiter);
  return true;
}
