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
import { ENCRYPTED_ENCODING } from '../../adapters/temporal/payload-codec';
import { HISTORY_DIR } from '../support/record-histories';
import { patchIdsIn } from '../support/history';
import { workflowBundle } from '../support/harness';

const files = readdirSync(HISTORY_DIR).filter((f) => f.endsWith('.json'));

test('there are recorded histories to replay', () => {
  expect(files.length).toBeGreaterThanOrEqual(2);
});

test('every workflow type has a recording made under the payload codec (decoded with the test key), and plaintext ones made before it remain', () => {
  const encrypted = Buffer.from(ENCRYPTED_ENCODING).toString('base64');
  const byType = new Map<string, { encrypted: number; plaintext: number }>();
  for (const file of files) {
    const text = readFileSync(join(HISTORY_DIR, file), 'utf8');
    const type = (JSON.parse(text) as { events: { workflowExecutionStartedEventAttributes?: { workflowType?: { name?: string } } }[] }).events[0].workflowExecutionStartedEventAttributes?.workflowType?.name ?? '?';
    const counts = byType.get(type) ?? { encrypted: 0, plaintext: 0 };
    counts[text.includes(encrypted) ? 'encrypted' : 'plaintext']++;
    byType.set(type, counts);
  }
  // The types the worker registers, as workflows/index.ts exports them (read as text: workflow code runs only in a workflow context).
  const types = [...readFileSync(join(__dirname, '..', '..', 'workflows', 'index.ts'), 'utf8').matchAll(/export \{ (\w+) \} from/g)].map((m) => m[1]);
  expect(types.length).toBeGreaterThanOrEqual(5);
  for (const type of types) expect([type, (byType.get(type)?.encrypted ?? 0) > 0]).toEqual([type, true]);
  expect([...byType.values()].some((c) => c.plaintext > 0)).toBe(true);
});

// Recordings kept for one patched path each: a re-recording that no longer takes the path would replay, and prove nothing of it.
test.each([['instance-capacity-next-subnet-encrypted.json', 'i11-capacity-next-subnet']])('%s records the patch marker %s', (file, patch) => {
  expect(files).toContain(file);
  expect(patchIdsIn(historyFromJSON(JSON.parse(readFileSync(join(HISTORY_DIR, file), 'utf8'))))).toContain(patch);
});

test.each(files)('%s replays deterministically on the current workflow code', async (file) => {
  const history = historyFromJSON(JSON.parse(readFileSync(join(HISTORY_DIR, file), 'utf8')));
  // Under the project's codec: recordings made before it are plaintext and must still decode.
  await expect(Worker.runReplayHistory({ workflowBundle: await workflowBundle(), dataConverter: nstanceDataConverter() }, history, file)).resolves.toBeUndefined();
});
