/**
 * Time as the rate limiters and pollers see it. Injected so unit tests drive them with a
 * fake clock instead of waiting (and so a test cannot pass only because it ran slowly).
 */
export interface Clock {
  now(): number;
  setTimeout(callback: () => void, ms: number): ClockTimer;
  clearTimeout(timer: ClockTimer): void;
}

/** Whatever the clock's setTimeout returned; only ever handed back to its clearTimeout. */
export type ClockTimer = unknown;

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (timer) => clearTimeout(timer as NodeJS.Timeout),
};
