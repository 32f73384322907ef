import { asyncLocalStorage } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { AwsClients } from './clients';
import { classifyAwsError } from './errors';

/**
 * How long a request shared by many activities (a batched look) may take before it is given up and
 * tried again at the next poll: well inside the waiters' 30 s heartbeat timeout, so one hung request
 * never makes every waiting activity of the worker time out.
 */
export const SHARED_REQUEST_TIMEOUT_MS = 15_000;

/**
 * Makes a request shared by many activities: with its own deadline (and no activity's cancellation),
 * classified as withAwsErrors does; a request past its deadline fails as retryable Aws.RequestTimeout.
 */
export async function sharedRequest<T>(doing: string, call: (options: { abortSignal: AbortSignal }) => Promise<T>, timeoutMs = SHARED_REQUEST_TIMEOUT_MS): Promise<T> {
  const abortSignal = AbortSignal.timeout(timeoutMs);
  try {
    return await call({ abortSignal });
  } catch (err) {
    if (abortSignal.aborted) {
      throw ApplicationFailure.create({ type: 'Aws.RequestTimeout', nonRetryable: false, message: `${doing}: no answer within ${timeoutMs} ms`, cause: err instanceof Error ? err : undefined });
    }
    throw classifyAwsError(err, doing);
  }
}

/** The cancellation signal of the activity this code runs in, if it runs in one. */
export function activitySignal(): AbortSignal | undefined {
  return asyncLocalStorage.getStore()?.cancellationSignal;
}

/**
 * Runs `work` as if no activity were running: for work shared by many activities (one batched
 * DescribeInstances for all of them), which the cancellation of whichever activity happened to
 * start it must not abort.
 */
export function outsideActivity<T>(work: () => T): T {
  return asyncLocalStorage.exit(work);
}

interface Sender {
  send(command: unknown, options?: unknown, callback?: unknown): Promise<unknown>;
}

/**
 * Wraps an SDK client so that a request made inside an activity is aborted when the activity is
 * cancelled (its Context's cancellationSignal becomes the request's abortSignal), and fails with the
 * activity's cancellation rather than the SDK's AbortError. Outside activities, and when the caller
 * passes its own abortSignal, requests go through untouched. Middleware (a fault layer) still applies:
 * the wrapper shares the client's stack.
 */
export function cancellableInActivities<C extends object>(client: C): C {
  const target = client as unknown as Sender;
  const send = async (command: unknown, options?: unknown, callback?: unknown): Promise<unknown> => {
    const signal = activitySignal();
    const own = options && typeof options === 'object' && 'abortSignal' in options;
    if (!signal || typeof options === 'function' || callback !== undefined || own) return target.send(command, options, callback);
    try {
      return await target.send(command, { ...(options as object | undefined), abortSignal: signal });
    } catch (err) {
      if (signal.aborted) throw signal.reason ?? err;
      throw err;
    }
  };
  return new Proxy(client, {
    get(obj, property) {
      if (property === 'send') return send;
      const value: unknown = Reflect.get(obj, property, obj);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(obj) : value;
    },
  });
}

/** The activity clients of a worker: every request cancellable with its activity. */
export function cancellableClients(clients: AwsClients): AwsClients {
  return {
    ec2: cancellableInActivities(clients.ec2),
    s3: cancellableInActivities(clients.s3),
    elbv2: cancellableInActivities(clients.elbv2),
    secrets: cancellableInActivities(clients.secrets),
    ssm: cancellableInActivities(clients.ssm),
  };
}
