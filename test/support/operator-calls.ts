/**
 * Which identity made a call, for the IAM proof: the in-process clients serve both the worker and what a
 * test does as the operator (`config apply`, whose zone check is the operator's, never the worker's).
 * Calls made inside `asOperator` are recorded as the operator's (the fault layer reads `currentCaller`)
 * and proven against the operator's policy instead of the worker's.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export type Caller = 'worker' | 'operator';

const caller = new AsyncLocalStorage<Caller>();

export function asOperator<T>(run: () => Promise<T>): Promise<T> {
  return caller.run('operator', run);
}

export function currentCaller(): Caller {
  return caller.getStore() ?? 'worker';
}
