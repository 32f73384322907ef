/**
 * How long the agent API works on one request, and how it reports what requests cost.
 * A request lives until its agent hangs up or its deadline passes, whichever is first:
 * the deadline sits inside the agent's 15 s socket timeout, so an answer is still
 * heard, and a request that cannot finish in time frees its slot instead of holding it
 * for an agent that has already given up and will ask again.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { RequestAbandonedError } from './fence';

/** From arrival (the queue wait counts): below the agent's 15 s timeout. */
export const REQUEST_DEADLINE_MS = 12_000;

export interface RequestLifetime {
  readonly signal: AbortSignal;
  /** Stops the deadline timer: call once the request is answered. */
  end(): void;
}

export function requestLifetime(req: IncomingMessage, res: ServerResponse, deadlineMs = REQUEST_DEADLINE_MS): RequestLifetime {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new RequestAbandonedError('deadline', `not answered within ${deadlineMs} ms`)), deadlineMs);
  timer.unref();
  const hungUp = (): void => {
    if (!res.writableFinished) controller.abort(new RequestAbandonedError('hung-up', `${req.method} ${req.url}: the agent hung up before the answer`));
  };
  res.once('close', hungUp);
  return {
    signal: controller.signal,
    end: () => {
      clearTimeout(timer);
      res.off('close', hungUp);
    },
  };
}

export type RequestOutcome = 'answered' | 'deadline' | 'hung-up';

/**
 * Latency and outcomes of one route over a window, logged once per window when there
 * was traffic: the figure that shows whether registrations keep up with a fleet's launch.
 */
export class RouteStats {
  private durations: number[] = [];
  private outcomes: Record<RequestOutcome, number> = { answered: 0, deadline: 0, 'hung-up': 0 };
  private timer: NodeJS.Timeout | undefined;
  /** Samples kept per window at most (the percentiles of a larger window come from its first ones). */
  static readonly MAX_SAMPLES = 20_000;

  constructor(
    private readonly route: string,
    private readonly options: { windowMs?: number; log: (line: string) => void; extra?: () => string },
  ) {}

  record(ms: number, outcome: RequestOutcome): void {
    this.outcomes[outcome]++;
    if (this.durations.length < RouteStats.MAX_SAMPLES) this.durations.push(ms);
  }

  start(): void {
    this.stop();
    this.timer = setInterval(() => this.flush(), this.options.windowMs ?? 30_000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The window's summary line (undefined when nothing came), and a fresh window. */
  flush(): string | undefined {
    const sorted = this.durations.sort((a, b) => a - b);
    const { answered, deadline } = this.outcomes;
    const hungUp = this.outcomes['hung-up'];
    this.durations = [];
    this.outcomes = { answered: 0, deadline: 0, 'hung-up': 0 };
    if (sorted.length === 0) return undefined;
    const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
    const extra = this.options.extra ? `, ${this.options.extra()}` : '';
    const line = `agent API: ${this.route}: ${answered} answered, ${deadline} past the deadline, ${hungUp} hung up; p50 ${at(0.5)} ms, p95 ${at(0.95)} ms, max ${sorted[sorted.length - 1]} ms${extra}`;
    this.options.log(line);
    return line;
  }
}
