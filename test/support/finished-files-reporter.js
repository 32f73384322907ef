/**
 * A jest reporter that leaves a mark for each integration test file that has finished (passed or
 * not), next to the count of files in the run, in the test stack's log directory (set by global
 * setup, which runs before any file). The history scan reads them (test/support/finished-files.ts):
 * with more than one jest worker, "sorted last" is not "started after every other file finished".
 */
const fs = require('node:fs');
const path = require('node:path');

const STACK_LOG_DIR_VAR = 'NSTANCE_TEST_STACK_LOGS';

class FinishedFilesReporter {
  onRunStart(results) {
    this.total = results.numTotalTestSuites;
    const dir = this.dir();
    if (dir) fs.writeFileSync(path.join(dir, 'total'), String(this.total));
  }

  onTestFileResult(test) {
    const dir = this.dir();
    if (dir) fs.writeFileSync(path.join(dir, `${path.basename(test.path)}.done`), '');
  }

  dir() {
    const logs = process.env[STACK_LOG_DIR_VAR];
    if (!logs) return undefined;
    const dir = path.join(logs, 'finished-files');
    fs.mkdirSync(dir, { recursive: true });
    return dir;
  }
}

module.exports = FinishedFilesReporter;
