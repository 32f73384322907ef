import { AsyncResource } from 'node:async_hooks';
import type { Clock, ClockTimer } from '../../adapters/aws/clock';

interface Timer {
  at: number;
  seq: number;
  callback: () => void;
}

/** Lets every promise chain that is ready run (microtasks and the I/O-free callbacks they queue). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** A clock that moves only when told to: timers fire in order, each followed by whatever it set off. */
export class FakeClock implements Clock {
  private time: number;
  private seq = 0;
  private timers: Timer[] = [];

  constructor(start = 0) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  setTimeout(callback: () => void, ms: number): ClockTimer {
    // As a real timer does, the callback runs in the async context that set it (an activity's, say).
    const timer: Timer = { at: this.time + Math.max(0, ms), seq: this.seq++, callback: AsyncResource.bind(callback) };
    this.timers.push(timer);
    return timer;
  }

  clearTimeout(timer: ClockTimer): void {
    this.timers = this.timers.filter((t) => t !== timer);
  }

  /** Timers waiting to fire. */
  get pending(): number {
    return this.timers.length;
  }

  /** Moves time forward by `ms`, firing due timers in order and letting what they start settle. */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    for (;;) {
      await settle();
      const next = this.timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!next) break;
      this.timers = this.timers.filter((t) => t !== next);
      this.time = Math.max(this.time, next.at);
      next.callback();
    }
    this.time = end;
    await settle();
  }
}
