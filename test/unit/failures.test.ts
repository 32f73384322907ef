import { ActivityFailure, ApplicationFailure, RetryState } from '@temporalio/common';
import { causeMessages, errorMessage } from '../../common/failures';

describe('causeMessages', () => {
  test('reads down the cause chain, outermost first', () => {
    const grpc = new Error('14 UNAVAILABLE: no poller', { cause: new Error('socket hang up') });
    const err = new Error('Failed to query Workflow', { cause: grpc });
    expect(causeMessages(err)).toEqual(['Failed to query Workflow', '14 UNAVAILABLE: no poller', 'socket hang up']);
  });

  test('an activity failure shows its wrapper and the application failure inside', () => {
    const inner = ApplicationFailure.nonRetryable('AccessDenied on ec2:RunInstances', 'AccessDenied');
    const err = new ActivityFailure('activity failed', 'launchBatch', '7', RetryState.NON_RETRYABLE_FAILURE, 'w1', inner);
    expect(causeMessages(err)).toEqual(['activity failed', 'AccessDenied on ec2:RunInstances']);
    expect(errorMessage(err)).toBe('AccessDenied on ec2:RunInstances');
  });

  test('a value that is not an error, and a cycle, end the chain', () => {
    expect(causeMessages('plain')).toEqual(['plain']);
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    (a as { cause?: unknown }).cause = b;
    expect(causeMessages(b)).toEqual(['b', 'a']);
  });
});
