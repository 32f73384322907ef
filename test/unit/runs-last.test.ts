/**
 * The files that judge what the whole integration run left (the IAM "nothing more" check, then the
 * history scan) are sorted last, and each waits for the run's other files, never for a file that itself
 * waits: the check does not wait for the scan, which waits for the check.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { waitForOtherFiles } from '../support/finished-files';

// The sequencer is plain JavaScript (jest loads it by path).
const Sequencer = require('../support/sequencer.js') as new (...args: unknown[]) => { sort(tests: { path: string }[]): Promise<{ path: string }[]> };

describe('the runs-last files', () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });

  it('are sorted last, the check before the scan, and the run lists its files for the workers', async () => {
    const tests = ['history-scan.test.ts', 'gc.test.ts', 'iam-statements-used.test.ts', 'group.test.ts'].map((f) => ({ path: `/repo/test/integration/${f}`, duration: 0, context: { config: {}, hasteFS: { getSize: () => 1 } } }));
    const sorted = await new Sequencer({ contexts: [] }).sort(tests as never);
    expect(sorted.slice(-2).map((t) => path.basename(t.path))).toEqual(['iam-statements-used.test.ts', 'history-scan.test.ts']);
    expect(process.env.NSTANCE_TEST_RUN_FILES?.split(',').sort()).toEqual(['gc.test.ts', 'group.test.ts', 'history-scan.test.ts', 'iam-statements-used.test.ts']);
  });

  it('wait for every other file of the run, but not for one in `notFor`', async () => {
    const logs = fs.mkdtempSync(path.join(os.tmpdir(), 'runs-last-'));
    const marks = path.join(logs, 'finished-files');
    fs.mkdirSync(marks);
    process.env.NSTANCE_TEST_STACK_LOGS = logs;
    process.env.NSTANCE_TEST_RUN_FILES = 'a.test.ts,b.test.ts,iam-statements-used.test.ts,history-scan.test.ts';
    fs.writeFileSync(path.join(marks, 'a.test.ts.done'), '');
    // b has not finished: both wait, until it times out.
    await expect(waitForOtherFiles('/x/iam-statements-used.test.ts', 50, ['history-scan.test.ts'])).rejects.toThrow(/1 of the run's other test files did not finish within 50 ms: b\.test\.ts/);
    fs.writeFileSync(path.join(marks, 'b.test.ts.done'), '');
    // The check waits for neither itself nor the scan; the scan waits for the check.
    await expect(waitForOtherFiles('/x/iam-statements-used.test.ts', 50, ['history-scan.test.ts'])).resolves.toBeUndefined();
    await expect(waitForOtherFiles('/x/history-scan.test.ts', 50)).rejects.toThrow(/iam-statements-used\.test\.ts/);
    fs.writeFileSync(path.join(marks, 'iam-statements-used.test.ts.done'), '');
    await expect(waitForOtherFiles('/x/history-scan.test.ts', 50)).resolves.toBeUndefined();
    fs.rmSync(logs, { recursive: true, force: true });
  });
});
