/**
 * Waits until every other test file of this jest run has finished (test/support/finished-files-reporter.js
 * marks them), so a file that reads what the whole suite left behind (the history scan) sees all of it
 * even when jest runs files in parallel.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { STACK_LOG_DIR_VAR } from './global-setup';

/** The files of this jest run (set by test/support/sequencer.js before the workers start), by name. */
const RUN_FILES_VAR = 'NSTANCE_TEST_RUN_FILES';

/** `notFor`: files that themselves wait for the others (those that run last), not waited for. */
export async function waitForOtherFiles(self: string, timeoutMs: number, notFor: readonly string[] = []): Promise<void> {
  const dir = path.join(process.env[STACK_LOG_DIR_VAR] ?? '', 'finished-files');
  const deadline = Date.now() + timeoutMs;
  const skipped = new Set([self, ...notFor].map((f) => path.basename(f)));
  const listed = process.env[RUN_FILES_VAR]?.split(',').filter((f) => f !== '');
  for (;;) {
    const marks = new Set((fs.existsSync(dir) ? fs.readdirSync(dir) : []).filter((f) => f.endsWith('.done')).map((f) => f.slice(0, -'.done'.length)));
    if (listed) {
      const waiting = listed.filter((f) => !skipped.has(f) && !marks.has(f));
      if (waiting.length === 0) return;
      if (Date.now() > deadline) throw new Error(`${waiting.length} of the run's other test files did not finish within ${timeoutMs} ms: ${waiting.join(', ')} (marks in ${dir})`);
    } else {
      const total = Number(readOr(path.join(dir, 'total'), '1'));
      const finished = [...marks].filter((f) => !skipped.has(f)).length;
      if (finished >= total - skipped.size) return;
      if (Date.now() > deadline) throw new Error(`${finished} of the run's ${total - 1} other test files finished within ${timeoutMs} ms (marks in ${dir})`);
    }
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
