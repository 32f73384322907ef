import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stackEnv } from './stack-env';

/** Where replay fixtures live; `NSTANCE_RECORD_HISTORIES=1 npx jest …` refreshes them. */
export const HISTORY_DIR = join(__dirname, '..', 'replay', 'histories');

/**
 * Saves a workflow's history as a replay fixture, when recording is switched on.
 * The temporal CLI writes the proto3 JSON that `historyFromJSON` reads back.
 */
export function recordHistory(workflowId: string, name: string): void {
  if (process.env.NSTANCE_RECORD_HISTORIES !== '1') return;
  const env = stackEnv();
  const json = execFileSync(env.temporalBin, ['workflow', 'show', '--address', env.temporalAddress, '--workflow-id', workflowId, '--output', 'json'], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  mkdirSync(HISTORY_DIR, { recursive: true });
  writeFileSync(join(HISTORY_DIR, `${name}.json`), json);
}
