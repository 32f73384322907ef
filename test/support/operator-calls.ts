/**
 * Which identity made a call, for the IAM proof: the in-process clients serve the worker, the test itself
 * (reads of what the worker wrote, seeding, stand-ins for other tools) and what a test does as the operator
 * (`config apply`, whose zone check is the operator's, never the worker's). Each client set is the worker's
 * or the test's (FaultLayer.attachAll); calls made inside `asOperator` are the operator's whatever the
 * client. The proof judges the operator's calls against the operator's policy and the others against the
 * worker's; only the worker's and the operator's count as a statement's use ("nothing more", iam-usage.ts).
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export type Caller = 'worker' | 'operator' | 'test';

const caller = new AsyncLocalStorage<Caller>();

export function asOperator<T>(run: () => Promise<T>): Promise<T> {
  return caller.run('operator', run);
}

/** The operator inside asOperator; otherwise whose the client is (`clientsOf`). */
export function currentCaller(clientsOf: Caller = 'worker'): Caller {
  return caller.getStore() ?? clientsOf;
}
