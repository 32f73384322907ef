/**
 * Replays the group workflow's runs of a phase against the workflow bundle the workers ran:
 * a history that only a worker holding the run in its cache could continue (nondeterminism)
 * shows up when another worker picks the group up, which at fleet size stalls the group.
 * A run that fails to replay is saved (proto3 JSON, as test/replay/histories holds) so it
 * can become a replay fixture.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import type { Window } from './histories';
import { nstanceDataConverter } from '../../adapters/temporal/data-converter';

export interface ReplayFindings {
  runs: number;
  failed: number;
  /** The first failures' messages. */
  errors: string[];
  /** Files the failing histories were saved to. */
  saved: string[];
}

export async function replayGroupRuns(client: Client, shard: string, window: Window, bundlePath: string, saveDir: string): Promise<ReplayFindings> {
  const histories: { workflowId: string; runId: string; history: Awaited<ReturnType<ReturnType<Client['workflow']['getHandle']>['fetchHistory']>> }[] = [];
  for await (const wf of client.workflow.list({ query: `NstanceShard = '${shard}' AND WorkflowType = 'groupWorkflow'` })) {
    const closed = wf.closeTime?.getTime();
    if (wf.startTime.getTime() > window.to || (closed !== undefined && closed < window.from)) continue;
    histories.push({ workflowId: wf.workflowId, runId: wf.runId, history: await client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory() });
  }
  const findings: ReplayFindings = { runs: histories.length, failed: 0, errors: [], saved: [] };
  if (histories.length === 0) return findings;
  const results = Worker.runReplayHistories({ workflowBundle: { codePath: bundlePath }, dataConverter: nstanceDataConverter(), replayName: `bench-${shard}` }, histories.map(({ workflowId, history }) => ({ workflowId, history })));
  for await (const result of results) {
    if (!result.error) continue;
    findings.failed++;
    if (findings.errors.length < 3) findings.errors.push(`${result.runId}: ${result.error.message}`.slice(0, 500));
    const run = histories.find((h) => h.runId === result.runId);
    if (run) {
      const file = path.join(saveDir, `group-${result.runId}.json`);
      fs.mkdirSync(saveDir, { recursive: true });
      fs.writeFileSync(file, historyToJSON(run.history));
      findings.saved.push(file);
    }
  }
  return findings;
}
