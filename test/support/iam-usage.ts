/**
 * "Nothing more": every statement of the generated policies, and every action in it, must allow at least
 * one call the scenarios really made. Each IAM proof (iam-proof.ts, worker-proof.ts) records, per test
 * file, the statements it proved against (offered) and which of them allowed which of its requests (used,
 * as the simulator's grant reasons say). The records are kept in the test stack's log directory, one
 * line per proof; test/integration/iam-statements-used.test.ts judges them all once every other file
 * has finished, and fails naming each statement and action no scenario used.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { PolicyDocument } from '../../common/iam/policy';
import type { ResourceUsage } from './iam-resource-usage';

/** Sid → actions. */
export type StatementActions = Record<string, string[]>;

export interface UsageRecord {
  /** The test file the proof ran in. */
  file: string;
  offered: StatementActions;
  used: StatementActions;
  /** Each statement's resource shapes offered, and those a credited call matched (iam-resource-usage.ts). */
  resources?: ResourceUsage;
}

const STACK_LOG_DIR_VAR = 'NSTANCE_TEST_STACK_LOGS';

export function usageDir(): string | undefined {
  const logs = process.env[STACK_LOG_DIR_VAR];
  return logs ? path.join(logs, 'iam-usage') : undefined;
}

/** The statements of `policies`, each with its actions (a Sid in several policies: the union). */
export function offeredBy(policies: readonly PolicyDocument[]): StatementActions {
  const out = new Map<string, Set<string>>();
  for (const policy of policies) for (const s of policy.Statement) for (const a of s.Action) (out.get(s.Sid) ?? out.set(s.Sid, new Set()).get(s.Sid))?.add(a);
  return Object.fromEntries([...out].map(([sid, actions]) => [sid, [...actions].sort()]));
}

/** Sid → actions, from (statement, action) pairs. */
export function byStatement(pairs: Iterable<{ sid: string; action: string }>): StatementActions {
  const out = new Map<string, Set<string>>();
  for (const { sid, action } of pairs) (out.get(sid) ?? out.set(sid, new Set()).get(sid))?.add(action);
  return Object.fromEntries([...out].map(([sid, actions]) => [sid, [...actions].sort()]));
}

/** The file the calling test runs in (jest's expect state), for the record. */
function currentTestFile(): string {
  const expectGlobal = (globalThis as { expect?: { getState(): { testPath?: string } } }).expect;
  const testPath = expectGlobal?.getState().testPath;
  return testPath ? path.basename(testPath) : 'unknown';
}

/** Appends one proof's record (no-op outside the integration stack, e.g. in unit tests). */
export function recordUsage(offered: StatementActions, used: StatementActions, dir = usageDir(), resources?: ResourceUsage): void {
  if (!dir) return;
  fs.mkdirSync(dir, { recursive: true });
  const record: UsageRecord = { file: currentTestFile(), offered, used, ...(resources ? { resources } : {}) };
  fs.appendFileSync(path.join(dir, `${process.pid}.jsonl`), `${JSON.stringify(record)}\n`);
}

export function readUsage(dir: string): UsageRecord[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl'))
    .flatMap((f) => fs.readFileSync(path.join(dir, f), 'utf8').split('\n').filter((line) => line.trim() !== ''))
    .map((line) => JSON.parse(line) as UsageRecord);
}

/**
 * Each offered statement action that no recorded request used, as "Sid: action (offered in files…)"; a
 * statement none of whose actions was used is named once, as a whole. Then, of the statements used, each
 * resource shape no credited request matched, among those offered in the files that used the statement
 * (from the records that carry resources).
 */
export function unusedStatements(records: readonly UsageRecord[]): string[] {
  const used = new Set(records.flatMap((r) => Object.entries(r.used).flatMap(([sid, actions]) => actions.map((a) => `${sid} ${a}`))));
  const offered = new Map<string, { actions: Set<string>; files: Set<string> }>();
  for (const r of records) {
    for (const [sid, actions] of Object.entries(r.offered)) {
      const entry = offered.get(sid) ?? offered.set(sid, { actions: new Set(), files: new Set() }).get(sid);
      for (const a of actions) entry?.actions.add(a);
      entry?.files.add(r.file);
    }
  }
  const out: string[] = [];
  for (const [sid, { actions, files }] of [...offered].sort(([a], [b]) => a.localeCompare(b))) {
    const unused = [...actions].filter((a) => !used.has(`${sid} ${a}`)).sort();
    if (unused.length === 0) continue;
    const where = `offered in ${[...files].sort().join(', ')}`;
    out.push(unused.length === actions.size ? `statement ${sid} (${unused.join(', ')}): never used (${where})` : `statement ${sid}: ${unused.join(', ')} never used (${where})`);
  }
  const wholly = new Set(out.filter((line) => line.includes('): never used')).map((line) => line.split(' ')[1]));
  const usedShapes = new Set(records.flatMap((r) => Object.entries(r.resources?.used ?? {}).flatMap(([sid, shapes]) => shapes.map((shape) => `${sid} ${shape}`))));
  const offeredShapes = new Map<string, { shapes: Set<string>; files: Set<string> }>();
  for (const r of records) {
    for (const [sid, shapes] of Object.entries(r.resources?.offered ?? {})) {
      // Judged where the statement was exercised: a file that never used it (a config that launches nothing) is judged with it as a whole, above.
      if (!(sid in r.used)) continue;
      const entry = offeredShapes.get(sid) ?? offeredShapes.set(sid, { shapes: new Set(), files: new Set() }).get(sid);
      for (const shape of shapes) entry?.shapes.add(shape);
      entry?.files.add(r.file);
    }
  }
  for (const [sid, { shapes, files }] of [...offeredShapes].sort(([a], [b]) => a.localeCompare(b))) {
    if (wholly.has(sid)) continue;
    const unmatched = [...shapes].filter((shape) => !usedShapes.has(`${sid} ${shape}`)).sort();
    if (unmatched.length > 0) out.push(`statement ${sid}: resource ${unmatched.join(', ')} never matched by a call it allowed (offered in ${[...files].sort().join(', ')})`);
  }
  return out;
}
