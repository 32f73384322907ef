import { incompleteHandoff } from '../../client/ops/leader';
import {
  chooseNextLeader,
  handoverOutcome,
  isStaleEpoch,
  networkRetryDelayMs,
  nextRepair,
  parseEpoch,
  reasonForEnd,
  shouldContinueAsNew,
  startingEpoch,
  stillAliveAfter,
  type Candidate,
  type HandoffSummary,
  type LeaderInfo,
} from '../../workflows/decisions/leader';

function candidate(workerId: string, seq: number, extra: Partial<Candidate> = {}): Candidate {
  return { workerId, seq, announcedAt: '2026-01-01T00:00:00Z', alive: true, leaving: false, generation: 1, ...extra };
}

describe('chooseNextLeader', () => {
  const all = [candidate('b', 2), candidate('a', 1), candidate('c', 3)];

  test('the earliest-announced live candidate leads', () => {
    expect(chooseNextLeader({ candidates: all })?.workerId).toBe('a');
  });

  test('the leader being replaced is excluded, dead and leaving ones are skipped', () => {
    expect(chooseNextLeader({ candidates: all, exclude: ['a'] })?.workerId).toBe('b');
    const some = [candidate('a', 1), candidate('b', 2, { alive: false }), candidate('c', 3, { leaving: true }), candidate('d', 4)];
    expect(chooseNextLeader({ candidates: some, exclude: ['a'] })?.workerId).toBe('d');
  });

  test('a live preferred worker wins; a dead one is ignored', () => {
    expect(chooseNextLeader({ candidates: all, preferred: 'c' })?.workerId).toBe('c');
    expect(chooseNextLeader({ candidates: [candidate('a', 1), candidate('c', 3, { alive: false })], preferred: 'c' })?.workerId).toBe('a');
  });

  test('an excluded but live worker is better than no leader; nobody live means none', () => {
    expect(chooseNextLeader({ candidates: [candidate('a', 1)], exclude: ['a'] })?.workerId).toBe('a');
    expect(chooseNextLeader({ candidates: [candidate('a', 1, { alive: false })] })).toBeUndefined();
    expect(chooseNextLeader({ candidates: [candidate('a', 1, { leaving: true })], exclude: ['a'] })).toBeUndefined();
  });
});

describe('epochs', () => {
  test('a write from an older epoch is stale; equal or newer is not', () => {
    expect(isStaleEpoch(1, 2)).toBe(true);
    expect(isStaleEpoch(2, 2)).toBe(false);
    expect(isStaleEpoch(3, 2)).toBe(false);
    expect(isStaleEpoch(1, undefined)).toBe(false);
  });

  test('epoch tags parse only when they are whole numbers', () => {
    expect(parseEpoch('12')).toBe(12);
    expect(parseEpoch(undefined)).toBeUndefined();
    expect(parseEpoch('x1')).toBeUndefined();
    expect(parseEpoch('-1')).toBeUndefined();
  });
});

describe('how a leadership ended', () => {
  test('timeouts mean dead or partitioned', () => {
    expect(reasonForEnd({ kind: 'timeout', timeoutType: 'HEARTBEAT' })).toBe('heartbeat-timeout');
    expect(reasonForEnd({ kind: 'timeout', timeoutType: 'SCHEDULE_TO_START' })).toBe('not-started');
    expect(stillAliveAfter({ kind: 'timeout', timeoutType: 'HEARTBEAT' })).toBe(false);
  });

  test('cancellation is a requested handoff; failures carry the worker-side reason', () => {
    expect(reasonForEnd({ kind: 'cancelled' })).toBe('requested');
    expect(stillAliveAfter({ kind: 'cancelled' })).toBe(true);
    expect(reasonForEnd({ kind: 'failed', failureType: 'LeaseLost' })).toBe('lease-lost');
    expect(reasonForEnd({ kind: 'failed', failureType: 'WorkerShutdown' })).toBe('worker-shutdown');
    expect(reasonForEnd({ kind: 'failed' })).toBe('failed');
    expect(reasonForEnd({ kind: 'completed' })).toBe('resigned');
  });
});

test('continue-as-new on handoff count, history length or the server hint', () => {
  const base = { handoffsThisRun: 1, maxHandoffsPerRun: 100, historyLength: 10, maxHistoryLength: 5000, suggested: false };
  expect(shouldContinueAsNew(base)).toBe(false);
  expect(shouldContinueAsNew({ ...base, handoffsThisRun: 100 })).toBe(true);
  expect(shouldContinueAsNew({ ...base, historyLength: 5000 })).toBe(true);
  expect(shouldContinueAsNew({ ...base, suggested: true })).toBe(true);
});

describe('a fresh run of the leader workflow', () => {
  test('resumes from the newest epoch left on the leader record or the ENI tag', () => {
    expect(startingEpoch({})).toBe(0);
    expect(startingEpoch({ record: 4 })).toBe(4);
    expect(startingEpoch({ interfaceTag: 6 })).toBe(6);
    // The tag is written before the record, so a move that failed half-way leaves it ahead.
    expect(startingEpoch({ record: 4, interfaceTag: 5 })).toBe(5);
    expect(startingEpoch({ record: 7, interfaceTag: 5 })).toBe(7);
  });
});

describe('repairing a leader network that did not move', () => {
  test('the backoff doubles from 5 s and is capped at 5 minutes', () => {
    expect([1, 2, 3, 4].map(networkRetryDelayMs)).toEqual([5_000, 10_000, 20_000, 40_000]);
    expect(networkRetryDelayMs(7)).toBe(300_000);
    expect(networkRetryDelayMs(1_000)).toBe(300_000);
    expect(networkRetryDelayMs(0)).toBe(5_000);
  });

  test('the next attempt keeps the epoch (the fence must still let it through) and is due after the backoff', () => {
    expect(nextRepair(9, 2, 'detach timed out', 1_000)).toEqual({ epoch: 9, attempts: 2, error: 'detach timed out', nextAttemptAt: 11_000 });
  });

  test('a handoff whose summary has an error is reported as a failure', () => {
    const summary: HandoffSummary = { to: 'w2', epoch: 3, reason: 'requested', detectedAt: '2026-01-01T00:00:00Z' };
    expect(incompleteHandoff({ to: 'w2', epoch: 3, summary })).toBeUndefined();
    expect(incompleteHandoff({ to: 'w2', epoch: 3, summary: { ...summary, error: 'boom' } })).toBe('handoff incomplete: boom');
    expect(incompleteHandoff({ to: 'w2', epoch: 3, summary: { ...summary, error: 'boom' }, networkRepair: nextRepair(3, 1, 'boom', 0) })).toMatch(/^handoff incomplete: boom \(.*keeps retrying/);
  });
});

describe('a resigning leader waits for the handover', () => {
  const leader = (workerId: string, epoch: number): LeaderInfo => ({ workerId, epoch, since: '2026-01-01T00:00:00Z' });
  const handoff = (to: string, epoch: number, extra: Partial<HandoffSummary> = {}): HandoffSummary => ({ to, epoch, reason: 'worker-shutdown', detectedAt: '2026-01-01T00:00:00Z', ...extra });

  test('not while it still leads, nor while the next epoch is still moving the ENI', () => {
    expect(handoverOutcome({ leader: leader('w1', 4), lastHandoff: handoff('w1', 4) }, 'w1', 4)).toEqual({ done: false });
    // w2 leads at 5, but the last finished handoff is still epoch 4's: the move is under way.
    expect(handoverOutcome({ leader: leader('w2', 5), lastHandoff: handoff('w1', 4) }, 'w1', 4)).toEqual({ done: false });
    // Stepped down, next leader not chosen yet.
    expect(handoverOutcome({ leader: undefined, lastHandoff: handoff('w1', 4) }, 'w1', 4)).toEqual({ done: false });
  });

  test('done once another worker leads at a newer epoch with its handoff finished, or with nobody to take over', () => {
    expect(handoverOutcome({ leader: leader('w2', 5), lastHandoff: handoff('w2', 5, { attachedAt: '2026-01-01T00:00:02Z' }) }, 'w1', 4)).toEqual({ done: true, to: 'w2', epoch: 5, error: undefined });
    expect(handoverOutcome({ leader: leader('w2', 5), lastHandoff: handoff('w2', 5, { error: 'in use' }) }, 'w1', 4)).toEqual({ done: true, to: 'w2', epoch: 5, error: 'in use' });
    expect(handoverOutcome({ leader: undefined, lastError: 'handoff: no other live candidate' }, 'w1', 4)).toEqual({ done: true, error: 'handoff: no other live candidate' });
  });
});
