/**
 * A group workflow never dies of an AWS or Temporal error. Each step of a pass (load the
 * spec, look images up, observe EC2, repair targets, start instances, deliver removals)
 * runs through here: a failure is recorded (the group's lastError names the step) and the
 * step is skipped until a backoff has passed, while the rest of the pass goes on.
 */
import { isCancellation, log } from '@temporalio/workflow';
import { errorMessage } from '../common/failures';

export type StepName = 'config' | 'rebuild' | 'images' | 'observe' | 'targets' | 'start' | 'remove' | 'records';

/** In the order `nstance groups` reports them: the first failing one is the group's last error. */
export const STEP_ORDER: readonly StepName[] = ['config', 'rebuild', 'images', 'observe', 'targets', 'start', 'remove', 'records'];

export interface StepHealth {
  failures: number;
  /** Workflow time before which the step is not tried again. */
  retryAt: number;
  error: string;
}

/** 5 s doubling, capped at 5 minutes: a long outage costs one attempt per 5 minutes, not a tight loop. */
export function stepBackoffMs(failures: number): number {
  return Math.min(5_000 * 2 ** Math.max(0, failures - 1), 300_000);
}

export function stepDue(steps: Partial<Record<StepName, StepHealth>>, name: StepName, now: number): boolean {
  const health = steps[name];
  return health === undefined || now >= health.retryAt;
}

/** The earliest time a failed step may be retried, if any is waiting. */
export function nextStepRetry(steps: Partial<Record<StepName, StepHealth>>): number | undefined {
  const times = Object.values(steps).map((s) => s?.retryAt ?? Infinity);
  const next = Math.min(...times);
  return Number.isFinite(next) ? next : undefined;
}

/** The first failing step's error, as `nstance groups` shows it. */
export function stepError(steps: Partial<Record<StepName, StepHealth>>): string | undefined {
  for (const name of STEP_ORDER) {
    const health = steps[name];
    if (health) return `${name}: ${health.error}`;
  }
  return undefined;
}

/**
 * Runs `work` as step `name`; resolves to its result, or undefined when it failed (recorded)
 * or is still backing off from an earlier failure. Cancellation is never swallowed.
 */
export async function runStep<T>(steps: Partial<Record<StepName, StepHealth>>, name: StepName, work: () => Promise<T>, context: Record<string, unknown> = {}): Promise<T | undefined> {
  if (!stepDue(steps, name, Date.now())) return undefined;
  try {
    const result = await work();
    delete steps[name];
    return result;
  } catch (err) {
    if (isCancellation(err)) throw err;
    const failures = (steps[name]?.failures ?? 0) + 1;
    const error = errorMessage(err);
    steps[name] = { failures, retryAt: Date.now() + stepBackoffMs(failures), error };
    log.warn(`group step ${name} failed; retrying later`, { ...context, step: name, failures, error });
    return undefined;
  }
}
