import {
  chooseNextLeader,
  isStaleEpoch,
  parseEpoch,
  reasonForEnd,
  shouldContinueAsNew,
  stillAliveAfter,
  type Candidate,
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
