/**
 * Web UI links for the runs a command starts or signals. The base is `--ui-url`, else
 * NSTANCE_UI_URL, else derived from the Temporal address: Temporal Cloud's UI for a
 * `*.tmprl.cloud` endpoint, otherwise the same host on the frontend port + 1000 (where
 * `temporal server start-dev` serves its UI by default: 7233 → 8233).
 */
import type { Client } from '@temporalio/client';

export interface RunRef {
  workflowId: string;
  runId?: string;
}

export function uiBaseUrl(explicit: string | undefined, temporalAddress: string, env: NodeJS.ProcessEnv = process.env): string {
  const given = explicit ?? env.NSTANCE_UI_URL;
  if (given) {
    if (!/^https?:\/\/[^/\s]+/.test(given)) throw new Error(`--ui-url: "${given}" is not an http(s) URL, for example http://127.0.0.1:8233`);
    return given.replace(/\/+$/, '');
  }
  const match = /^(?:[a-z]+:\/\/)?(\[[^\]]+\]|[^:/]+)(?::(\d+))?/i.exec(temporalAddress.trim());
  if (!match) throw new Error(`cannot derive the Web UI address from TEMPORAL_ADDRESS "${temporalAddress}": pass --ui-url`);
  const host = match[1];
  if (/\.tmprl\.cloud$/i.test(host)) return 'https://cloud.temporal.io';
  const port = Number(match[2] ?? 7233);
  const uiHost = host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host;
  return `http://${uiHost}:${port + 1000}`;
}

export function workflowRunUrl(base: string, namespace: string, run: RunRef): string {
  const ns = encodeURIComponent(namespace);
  if (!run.runId) return workflowListUrl(base, namespace, `WorkflowId = "${run.workflowId.replace(/["\\]/g, '\\$&')}"`);
  return `${base}/namespaces/${ns}/workflows/${encodeURIComponent(run.workflowId)}/${encodeURIComponent(run.runId)}/history`;
}

export function workflowListUrl(base: string, namespace: string, query: string): string {
  return `${base}/namespaces/${encodeURIComponent(namespace)}/workflows?query=${encodeURIComponent(query)}`;
}

/** The run a signal landed on (a plain signal does not say): one describe, and a link without it if that fails. */
export async function currentRun(client: Client, workflowId: string): Promise<RunRef> {
  try {
    const described = await client.workflow.getHandle(workflowId).describe();
    return { workflowId, runId: described.runId };
  } catch {
    return { workflowId };
  }
}

/** The runs as given, with the current run's id looked up for those a plain signal left without one. */
export async function withRunIds(client: Client, runs: readonly RunRef[]): Promise<RunRef[]> {
  return Promise.all(runs.map((run) => (run.runId ? run : currentRun(client, run.workflowId))));
}

/** "Web UI: <link>" lines, for humans (stdout); `--json` output carries the same links as fields. */
export function linkLines(base: string, namespace: string, runs: RunRef[]): string {
  return runs.map((run) => `Web UI: ${workflowRunUrl(base, namespace, run)}\n`).join('');
}
