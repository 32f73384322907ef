/**
 * Jest's own order (slowest and failed first), except that the history scan runs last: it reads
 * every history the integration suite produced (test/integration/history-scan.test.ts). The suite
 * runs in band (scripts/test.sh), so last means after every other file has finished.
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
