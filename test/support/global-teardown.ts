/**
 * Jest globalTeardown of the `integration` project: stops what global-setup.ts
 * started. Jest runs it whether tests passed or failed. Set NSTANCE_KEEP_STACK_LOGS=1
 * to keep the servers' logs (their directory is printed).
 */
import * as fs from 'fs';
import { killGroups, stackProcessGroups, STACK_LOG_DIR_VAR, STACK_PGIDS_VAR } from './global-setup';

const GRACE_MS = 3_000;

export default async function globalTeardown(): Promise<void> {
  const groups = stackProcessGroups();
  killGroups(groups, 'SIGTERM');
  const deadline = Date.now() + GRACE_MS;
  while (groups.some(groupAlive) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  killGroups(groups.filter(groupAlive), 'SIGKILL');
  process.env[STACK_PGIDS_VAR] = '';

  const logDir = process.env[STACK_LOG_DIR_VAR];
  if (logDir) {
    if (process.env.NSTANCE_KEEP_STACK_LOGS) console.log(`integration stack logs kept in ${logDir}`);
    else fs.rmSync(logDir, { recursive: true, force: true });
  }
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}
