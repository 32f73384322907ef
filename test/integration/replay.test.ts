/**
 * Replays recorded histories (test/replay/histories, refreshed with
 * NSTANCE_RECORD_HISTORIES=1) against today's workflow code, so a change that
 * would break running workflows (non-determinism) fails here, not in a fleet.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { nstanceDataConverter } from '../../adapters/temporal/data-converter';
import { HISTORY_DIR } from '../support/record-histories';
import { workflowBundle } from '../support/harness';

const files = readdirSync(HISTORY_DIR).filter((f) => f.endsWith('.json'));

test('there are recorded histories to replay', () => {
  expect(files.length).toBeGreaterThanOrEqual(2);
});

test.each(files)('%s replays deterministically on the current workflow code', async (file) => {
  const history = historyFromJSON(JSON.parse(readFileSync(join(HISTORY_DIR, file), 'utf8')));
  // Under the project's codec: recordings made before it are plaintext and must still decode.
  await expect(Worker.runReplayHistory({ workflowBundle: await workflowBundle(), dataConverter: nstanceDataConverter() }, history, file)).resolves.toBeUndefined();
});
