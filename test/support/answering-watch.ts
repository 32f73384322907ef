/**
 * Who answers as leader over time, across a leader stack's worker processes: sampled until stopped, for the
 * "never two at once" and "the gap is bounded" assertions of the leader tests.
 */
import type { LeaderStack } from './leader-stack';
import { answering, type Answer } from './processes';

export interface AnsweringSeen {
  /** Most workers answering as leader in one sample. */
  maxAnswering: number;
  samples: number;
  zeroSamples: number;
  answeredBy: Set<string>;
  /** Per worker, when its first and its last answer as leader arrived (ms since epoch). */
  firstAnswerAt: Map<string, number>;
  lastAnswerAt: Map<string, number>;
  /**
   * Longest time nobody answered, as an upper bound: from the last sample with an answer
   * before a run of empty samples to the first sample with one after it (or the stop).
   */
  longestZeroMs: number;
  /** Samples in which more than one worker answered (for the failure message). */
  overlaps: Answer[][];
}

/**
 * Polls every worker's status endpoint and agent API until stopped; records the most
 * answering at once, when each worker answered, and the longest stretch with none.
 */
export function watchAnswering(stack: LeaderStack, everyMs = 100): { stop: () => Promise<AnsweringSeen> } {
  let running = true;
  const seen: AnsweringSeen = { maxAnswering: 0, samples: 0, zeroSamples: 0, answeredBy: new Set(), firstAnswerAt: new Map(), lastAnswerAt: new Map(), longestZeroMs: 0, overlaps: [] };
  let lastAnswered = Date.now();
  let inZero = false;
  const loop = (async () => {
    while (running) {
      const now = await answering(stack.live());
      const at = Math.max(Date.now(), ...now.map((a) => a.at));
      seen.samples++;
      seen.maxAnswering = Math.max(seen.maxAnswering, now.length);
      if (now.length > 1) seen.overlaps.push(now);
      if (now.length === 0) {
        seen.zeroSamples++;
        inZero = true;
      } else {
        if (inZero) seen.longestZeroMs = Math.max(seen.longestZeroMs, at - lastAnswered);
        inZero = false;
        lastAnswered = at;
      }
      for (const a of now) {
        seen.answeredBy.add(a.workerId);
        if (!seen.firstAnswerAt.has(a.workerId)) seen.firstAnswerAt.set(a.workerId, a.at);
        seen.lastAnswerAt.set(a.workerId, a.at);
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
    if (inZero) seen.longestZeroMs = Math.max(seen.longestZeroMs, Date.now() - lastAnswered);
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return seen;
    },
  };
}
