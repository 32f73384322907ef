import { ApplicationFailure, CancelledFailure } from '@temporalio/common';

/**
 * AWS error codes that mean the request itself is wrong: retrying cannot help,
 * so they surface at once as a non-retryable failure naming the cause.
 */
const REJECTED = new Set([
  'InvalidParameterValue',
  'InvalidParameterCombination',
  'InvalidParameter',
  'MissingParameter',
  'UnknownParameter',
  'InvalidAMIID.Malformed',
  'InvalidAMIID.Unavailable',
  'InvalidSubnetID.Malformed',
  'InvalidGroupId.Malformed',
  'InvalidInstanceID.Malformed',
  'InvalidKeyPair.NotFound',
  'InvalidBlockDeviceMapping',
  'UnauthorizedOperation',
  'AuthFailure',
  'AccessDenied',
  'AccessDeniedException',
  'ValidationError',
  'NoSuchBucket',
  'Unsupported',
  // A retry of the same request can only meet the same answer.
  'IdempotentParameterMismatch',
  'InvalidSubnetID.NotFound',
  'InvalidGroup.NotFound',
  'TargetGroupNotFound',
  'TargetGroupNotFoundException',
]);

/**
 * EC2 has no room for the launch right now: no capacity for the type in the zone, or the account's
 * instance or vCPU limit. The instance workflow retries these slowly (durable backoff) and reports them,
 * so they fail the activity at once as 'InsufficientCapacity' instead of spending its quick retries.
 */
export const CAPACITY_SHORTAGES = ['InsufficientInstanceCapacity', 'InsufficientCapacity', 'InstanceLimitExceeded', 'VcpuLimitExceeded'];

/** Failure types the workflows treat as "do not retry". */
export const NON_RETRYABLE_TYPES = ['AwsRequestRejected', 'ConfigInvalid', 'ConfigMissing'];

export function awsErrorCode(err: unknown): string | undefined {
  if (err && typeof err === 'object') {
    const e = err as { name?: unknown; Code?: unknown; code?: unknown };
    for (const v of [e.Code, e.code, e.name]) if (typeof v === 'string' && v !== 'Error') return v;
  }
  return undefined;
}

export function isAwsErrorCode(err: unknown, ...codes: string[]): boolean {
  const code = awsErrorCode(err);
  return code !== undefined && codes.includes(code);
}

/**
 * Wraps an AWS failure with what we were doing, and classifies it: a rejected
 * request becomes non-retryable; everything else (throttling, 5xx, eventual
 * consistency, network) stays retryable and is retried by the activity policy.
 */
export function classifyAwsError(err: unknown, doing: string): Error {
  // Already classified, or the activity's own cancellation (a request aborted with it): never rewrapped.
  if (err instanceof ApplicationFailure || err instanceof CancelledFailure) return err;
  const code = awsErrorCode(err) ?? 'UnknownError';
  const message = `${doing}: ${code}: ${err instanceof Error ? err.message : String(err)}`;
  const cause = err instanceof Error ? err : undefined;
  if (REJECTED.has(code)) {
    return ApplicationFailure.create({ message, type: 'AwsRequestRejected', nonRetryable: true, cause });
  }
  return ApplicationFailure.create({ message, type: `Aws.${code}`, nonRetryable: false, cause });
}

export async function withAwsErrors<T>(doing: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw classifyAwsError(err, doing);
  }
}
