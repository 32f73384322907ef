/**
 * What EC2 held over time, from the fault proxy's ledger of the launches and terminations
 * it saw EC2 accept: exact to the millisecond, where sampling EC2 would be seconds coarse
 * (and would load moto). On moto an instance runs as soon as its launch is answered, so the
 * moment the ledger reaches N held is the moment EC2 shows N running; the benchmark still
 * confirms it with a describe.
 */
import type { InstanceEvent } from '../../test/support/fault-proxy';

export interface HeldCurve {
  /** Instances launched in the window. */
  launched: number;
  terminated: number;
  maxHeld: number;
  /** ms since epoch at which the most were held. */
  maxHeldAt?: number;
  /** ms since epoch at which `n` instances were first held, for each n reached (index n - 1). */
  reachedAt: number[];
  /** Held at the end of the window. */
  held: Set<string>;
}

/** Replays the events at or after `from` (and up to `to`), starting from `initial` held instances. */
export function heldCurve(events: readonly InstanceEvent[], from: number, to = Infinity, initial: Iterable<string> = []): HeldCurve {
  const held = new Set(initial);
  const curve: HeldCurve = { launched: 0, terminated: 0, maxHeld: held.size, reachedAt: [], held };
  for (const e of events) {
    if (e.at < from || e.at > to) continue;
    for (const id of e.ids) {
      if (e.kind === 'launched' && !held.has(id)) {
        held.add(id);
        curve.launched++;
      } else if (e.kind === 'terminated' && held.delete(id)) curve.terminated++;
    }
    for (let n = curve.reachedAt.length + 1; n <= held.size; n++) curve.reachedAt.push(e.at);
    if (held.size > curve.maxHeld) {
      curve.maxHeld = held.size;
      curve.maxHeldAt = e.at;
    }
  }
  return curve;
}

/**
 * What the proxy's ledger says EC2 holds now, kept up incrementally (a sample a second must not replay
 * thousands of events). Instances removed outside the proxy (the floor's clean-up, straight at moto) are
 * forgotten by the caller that removed them.
 */
export class LedgerHeld {
  private readonly held = new Set<string>();
  /** `next`: the first event that counts (a phase that counts only what it launched itself starts at the ledger's length). */
  constructor(
    private readonly events: readonly InstanceEvent[],
    private next = 0,
  ) {}

  now(): ReadonlySet<string> {
    for (; this.next < this.events.length; this.next++) {
      const e = this.events[this.next];
      if (!e) continue;
      for (const id of e.ids) {
        if (e.kind === 'launched') this.held.add(id);
        else this.held.delete(id);
      }
    }
    return this.held;
  }

  forget(ids: Iterable<string>): void {
    this.now();
    for (const id of ids) this.held.delete(id);
  }
}
