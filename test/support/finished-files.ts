/**
 * Waits until every other test file of this jest run has finished (test/support/finished-files-reporter.js
 * marks them), so a file that reads what the whole suite left behind (the history scan) sees all of it
 * even when jest runs files in parallel.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { STACK_LOG_DIR_VAR } from './global-setup';

export async function waitForOtherFiles(self: string, timeoutMs: number): Promise<void> {
  const dir = path.join(process.env[STACK_LOG_DIR_VAR] ?? '', 'finished-files');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const total = Number(readOr(path.join(dir, 'total'), '1'));
    const finished = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.done') && f !== `${path.basename(self)}.done`).length : 0;
    if (finished >= total - 1) return;
    if (Date.now() > deadline) throw new Error(`${finished} of the run's ${total - 1} other test files finished within ${timeoutMs} ms (marks in ${dir})`);
    await new Promise((r) => setTimeout(r, 1_000));
  }
}

function readOr(file: string, fallback: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return fallback;
  }
}
