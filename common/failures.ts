/**
 * The one place that reads through a failure's causes. Temporal wraps what went wrong
 * (an ActivityFailure's own message only says "activity failed"); the failure inside
 * it carries the message worth showing and the type worth deciding on. Used by
 * workflows, so it must stay deterministic.
 */
import { ActivityFailure, ApplicationFailure, ChildWorkflowFailure } from '@temporalio/common';

/** The failure that says what went wrong, with Temporal's wrappers peeled off. */
export function rootFailure(err: unknown): unknown {
  let e: unknown = err;
  while ((e instanceof ActivityFailure || e instanceof ChildWorkflowFailure) && e.cause) e = e.cause;
  return e;
}

export function errorMessage(err: unknown): string {
  const e = rootFailure(err);
  return e instanceof Error ? e.message || e.name : String(e);
}

/**
 * Every message down an error's `cause` chain, outermost first. A gRPC or workflow
 * failure's own message ("Failed to query Workflow", "Workflow execution failed") names
 * the call; what went wrong is further down.
 */
export function causeMessages(err: unknown): string[] {
  const messages: string[] = [];
  const seen = new Set<unknown>();
  for (let e: unknown = err; e !== undefined && e !== null && !seen.has(e); e = e instanceof Error ? e.cause : undefined) {
    seen.add(e);
    messages.push(e instanceof Error ? e.message || e.name : String(e));
  }
  return messages;
}

/** The ApplicationFailure type (e.g. "InsufficientCapacity"), when the root failure has one. */
export function failureType(err: unknown): string | undefined {
  const e = rootFailure(err);
  return e instanceof ApplicationFailure ? (e.type ?? undefined) : undefined;
}
