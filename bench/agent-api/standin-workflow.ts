/**
 * Bench-only stand-in for the instance workflow: it runs under the instance workflow's id
 * (`nstance:<shard>:instance:<id>`, which registration describes to check the instance is
 * live) and takes the signals the agent API sends, without launching anything. Bundled by
 * the benchmark's (and the agent API scale test's) own worker, never by the shard worker.
 */
import { condition, defineQuery, setHandler } from '@temporalio/workflow';
import { agentRegisteredSignal, instanceHealthSignal } from '../../workflows/definitions';

export const standInCountsQuery = defineQuery<{ registrations: number; healthTransitions: number }>('standInCounts');

export async function instanceStandIn(): Promise<void> {
  let registrations = 0;
  let healthTransitions = 0;
  setHandler(agentRegisteredSignal, () => void registrations++);
  setHandler(instanceHealthSignal, () => void healthTransitions++);
  setHandler(standInCountsQuery, () => ({ registrations, healthTransitions }));
  // Lives until the benchmark terminates it, as an instance workflow lives as long as its instance.
  await condition(() => false);
}
