/**
 * Jest's own order (slowest and failed first), except that the IAM "nothing more" check
 * (iam-statements-used.test.ts) and then the history scan run last. The scan reads
 * every history the integration suite produced (test/integration/history-scan.test.ts). With more
 * than one jest worker, last is not after every other file has finished, so its scan also waits
 * for them (test/support/finished-files.ts).
 */
const Sequencer = require('@jest/test-sequencer').default;

// The IAM "nothing more" check judges what every other file's proofs recorded; the history scan reads every history (so also the check's).
const RUNS_LAST = [/iam-statements-used\.test\.ts$/, /history-scan\.test\.ts$/];
const rank = (t) => RUNS_LAST.findIndex((re) => re.test(t.path));
/** The files of this run, by name: set before jest starts its workers, which inherit it (finished-files.ts reads it). */
const RUN_FILES_VAR = 'NSTANCE_TEST_RUN_FILES';

class NstanceSequencer extends Sequencer {
  async sort(tests) {
    const sorted = await super.sort(tests);
    process.env[RUN_FILES_VAR] = tests.map((t) => require('node:path').basename(t.path)).join(',');
    return [...sorted.filter((t) => rank(t) < 0), ...RUNS_LAST.flatMap((_, i) => sorted.filter((t) => rank(t) === i))];
  }
}

module.exports = NstanceSequencer;
