/**
 * Durations in Nstance configs are Go `time.ParseDuration` strings ("90s", "1h30m",
 * "504h"), plus a day unit ("21d") because expiry ages are naturally written in days.
 * Everything inside nstance-temporal works in milliseconds.
 */

const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  'µs': 1e-3,
  'μs': 1e-3,
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

const ALLOWED =
  'a non-negative number followed by a unit (ns, us, ms, s, m, h, d), optionally repeated, e.g. "90s", "5m", "1h30m", "1.5h", "21d"';

// Longest units first so "ms" is not read as "m" followed by garbage.
const SEGMENT = /^(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d)/;

/** Parses a Go-style duration (plus days) into milliseconds; throws on anything else. */
export function parseDuration(text: string): number {
  if (typeof text !== 'string') throw invalid(text, 'not a string');
  if (text === '') throw invalid(text, 'empty');
  // Go accepts a bare "0"; any other unit-less number is ambiguous, so it is rejected.
  if (text === '0') return 0;
  if (text.startsWith('-')) throw invalid(text, 'negative durations are not allowed');
  let rest = text.startsWith('+') ? text.slice(1) : text;
  if (rest === '') throw invalid(text, 'no number after the sign');
  let total = 0;
  while (rest.length > 0) {
    const m = SEGMENT.exec(rest);
    if (!m) {
      const unitless = /^(\d+(?:\.\d*)?|\.\d+)$/.test(rest);
      throw invalid(text, unitless ? `missing unit after "${rest}"` : `unexpected "${rest}"`);
    }
    total += Number(m[1]) * UNIT_MS[m[2]];
    rest = rest.slice(m[0].length);
  }
  if (!Number.isFinite(total)) throw invalid(text, 'too large');
  return total;
}

function invalid(text: unknown, why: string): Error {
  return new Error(`invalid duration ${JSON.stringify(text)}: ${why}; expected ${ALLOWED}`);
}

/** True when `text` is a valid duration; for schema checks that report their own message. */
export function isDuration(text: string): boolean {
  try {
    parseDuration(text);
    return true;
  } catch {
    return false;
  }
}

const FORMAT_UNITS: readonly [string, number][] = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1_000],
  ['ms', 1],
];

/**
 * Compact, parseable rendering ("1h30m", "21d", "200ms", "0s"): the inverse of
 * parseDuration for whole nanoseconds, used in messages and CLI output.
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) throw new Error(`cannot format duration ${ms}`);
  if (ms === 0) return '0s';
  if (ms < 0) return `-${formatDuration(-ms)}`;
  let whole = Math.floor(ms);
  // Sub-millisecond parts are kept separately so large values do not lose precision.
  let nanos = Math.round((ms - whole) * 1e6);
  if (nanos >= 1e6) {
    whole += 1;
    nanos -= 1e6;
  }
  let out = '';
  for (const [unit, size] of FORMAT_UNITS) {
    const n = Math.floor(whole / size);
    if (n > 0) out += `${n}${unit}`;
    whole -= n * size;
  }
  const micros = Math.floor(nanos / 1000);
  if (micros > 0) out += `${micros}us`;
  if (nanos % 1000 > 0) out += `${nanos % 1000}ns`;
  return out;
}
