/**
 * Jest's own order (slowest and failed first), except that the history scan runs last: it reads
 * every history the integration suite produced (test/integration/history-scan.test.ts). With more
 * than one jest worker, last is not after every other file has finished, so its scan also waits
 * for them (test/support/finished-files.ts).
 */
const Sequencer = require('@jest/test-sequencer').default;

const RUNS_LAST = /history-scan\.test\.ts$/;

class NstanceSequencer extends Sequencer {
  async sort(tests) {
    const sorted = await super.sort(tests);
    return [...sorted.filter((t) => !RUNS_LAST.test(t.path)), ...sorted.filter((t) => RUNS_LAST.test(t.path))];
  }
}

module.exports = NstanceSequencer;
