import { formatDuration, isDuration, parseDuration } from '../../common/duration';

describe('parseDuration', () => {
  it.each([
    ['0', 0],
    ['0s', 0],
    ['200ms', 200],
    ['90s', 90_000],
    ['5m', 300_000],
    ['1h30m', 5_400_000],
    ['1.5h', 5_400_000],
    ['.5s', 500],
    ['504h', 504 * 3_600_000],
    ['21d', 21 * 86_400_000],
    ['1d12h', 36 * 3_600_000],
    ['1h1m1s1ms', 3_661_001],
    ['+10s', 10_000],
    ['1500us', 1.5],
    ['1500µs', 1.5],
    ['2000000ns', 2],
  ])('%s = %d ms', (text, ms) => {
    expect(parseDuration(text)).toBeCloseTo(ms, 9);
    expect(isDuration(text)).toBe(true);
  });

  it.each(['', '5', '5 minutes', '5min', '1h 30m', '-5s', 'h', '1.2.3s', '5s extra', '1y', '+', 'PT5M'])('rejects %j', (text) => {
    expect(() => parseDuration(text)).toThrow(`invalid duration ${JSON.stringify(text)}`);
    expect(isDuration(text)).toBe(false);
  });

  it('says what is allowed', () => {
    expect(() => parseDuration('5 minutes')).toThrow(/expected a non-negative number followed by a unit \(ns, us, ms, s, m, h, d\).*"1h30m"/);
    expect(() => parseDuration('10')).toThrow('missing unit after "10"');
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0s'],
    [200, '200ms'],
    [90_000, '1m30s'],
    [5_400_000, '1h30m'],
    [504 * 3_600_000, '21d'],
    [36 * 3_600_000 + 1, '1d12h1ms'],
    [1.5, '1ms500us'],
    [-60_000, '-1m'],
  ])('%d ms = %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('round-trips through parseDuration', () => {
    for (const ms of [1, 999, 1_000, 61_001, 3_600_000, 86_400_000 * 400 + 7, 0.25]) {
      expect(parseDuration(formatDuration(ms))).toBeCloseTo(ms, 9);
    }
  });

  it('rejects non-finite values', () => {
    expect(() => formatDuration(Number.NaN)).toThrow('cannot format duration NaN');
  });
});
