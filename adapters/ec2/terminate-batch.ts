import { TerminateInstancesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { awsErrorCode, classifyAwsError, isAwsErrorCode } from '../aws/errors';
import type { Ec2RateLimits } from '../aws/token-bucket';

/**
 * Ids per TerminateInstances call. EC2 takes up to 1000, but one bad id fails the whole call, and
 * then every id is tried on its own: a smaller batch keeps that fallback cheap.
 */
export const TERMINATE_BATCH_SIZE = 100;

/** Codes with which EC2 refuses a whole call for the sake of one of its ids; the others are fine on their own. */
const SPOILED_BY_ONE_ID = ['InvalidInstanceID.NotFound', 'OperationNotPermitted', 'IncorrectInstanceState'];

export interface TerminateDeps {
  ec2: EC2Client;
  limits: Ec2RateLimits;
}

export interface TerminateOutcome {
  /** Terminating now, or already gone (EC2 no longer knows the id). */
  terminated: string[];
  /** Ids EC2 would not terminate (termination protection, a state it cannot leave): the rest went on. */
  refused: { ec2InstanceId: string; error: string }[];
  /** TerminateInstances requests made. */
  calls: number;
}

/** EC2's TerminateInstances bucket counts instances, not requests: one token per id. */
async function takeTokens(limits: Ec2RateLimits, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await limits.terminate.take();
}

/**
 * Terminates up to TERMINATE_BATCH_SIZE instances in one call; if EC2 refuses the call for one of
 * them, each is tried on its own. Idempotent: an instance already terminating or gone counts as
 * terminated. Throttling, 5xx and a rejected request (AccessDenied) throw, classified.
 */
export async function terminateInstanceBatch(deps: TerminateDeps, ec2InstanceIds: readonly string[]): Promise<TerminateOutcome> {
  if (ec2InstanceIds.length > TERMINATE_BATCH_SIZE) throw new Error(`terminateInstanceBatch: ${ec2InstanceIds.length} ids, more than ${TERMINATE_BATCH_SIZE}`);
  const outcome: TerminateOutcome = { terminated: [], refused: [], calls: 0 };
  if (ec2InstanceIds.length === 0) return outcome;
  await takeTokens(deps.limits, ec2InstanceIds.length);
  try {
    outcome.calls += 1;
    await deps.ec2.send(new TerminateInstancesCommand({ InstanceIds: [...ec2InstanceIds] }));
    outcome.terminated.push(...ec2InstanceIds);
    return outcome;
  } catch (err) {
    if (!isAwsErrorCode(err, ...SPOILED_BY_ONE_ID)) throw classifyAwsError(err, `TerminateInstances (${ec2InstanceIds.length} ids: ${ec2InstanceIds.join(', ')})`);
    if (ec2InstanceIds.length === 1) return single(outcome, ec2InstanceIds[0] as string, err);
  }
  for (const ec2InstanceId of ec2InstanceIds) {
    await takeTokens(deps.limits, 1);
    try {
      outcome.calls += 1;
      await deps.ec2.send(new TerminateInstancesCommand({ InstanceIds: [ec2InstanceId] }));
      outcome.terminated.push(ec2InstanceId);
    } catch (err) {
      if (!isAwsErrorCode(err, ...SPOILED_BY_ONE_ID)) throw classifyAwsError(err, `TerminateInstances ${ec2InstanceId}`);
      single(outcome, ec2InstanceId, err);
    }
  }
  return outcome;
}

/** What one id's own refusal means: NotFound is gone (as good as terminated), anything else a refusal. */
function single(outcome: TerminateOutcome, ec2InstanceId: string, err: unknown): TerminateOutcome {
  if (isAwsErrorCode(err, 'InvalidInstanceID.NotFound')) outcome.terminated.push(ec2InstanceId);
  else outcome.refused.push({ ec2InstanceId, error: `${awsErrorCode(err)}: ${err instanceof Error ? err.message : String(err)}` });
  return outcome;
}
