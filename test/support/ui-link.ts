/**
 * Reading back the Web UI links the CLI prints ("Web UI: <base>/namespaces/<ns>/workflows/<id>/<run>/history"),
 * for tests to check that a command's link opens the run it started or signalled.
 */
import type { Client } from '@temporalio/client';

/** The runs the "Web UI: <link>" lines of a command's output open, read back from each link's path. */
export function linkedRuns(stdout: string): { workflowId: string; runId: string }[] {
  return [...stdout.matchAll(/^Web UI: https?:\/\/[^/\s]+\/namespaces\/[^/\s]+\/workflows\/([^/\s]+)\/([^/\s]+)\/history$/gm)].map((m) => ({
    workflowId: decodeURIComponent(m[1] as string),
    runId: decodeURIComponent(m[2] as string),
  }));
}

/**
 * The one run `stdout` links to: it must be a run of `workflowId` that Temporal knows (the run the command
 * started or signalled; it may have continued as new since). Returns its run id.
 */
export async function expectLinkToRunOf(client: Client, stdout: string, workflowId: string): Promise<string> {
  const runs = linkedRuns(stdout);
  expect(runs.map((r) => r.workflowId)).toEqual([workflowId]);
  const runId = runs[0]?.runId as string;
  const described = await client.workflow.getHandle(workflowId, runId).describe();
  expect([described.workflowId, described.runId]).toEqual([workflowId, runId]);
  return runId;
}
