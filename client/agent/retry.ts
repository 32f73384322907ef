/**
 * How the agent treats a refused or failed request: which are worth retrying, and how long
 * to wait, so a fleet turned away together (a busy or restarting agent API) comes back
 * spread out rather than all at once.
 */

export class AgentRequestError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** The server's Retry-After (429, 503), in ms. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'AgentRequestError';
  }

  /** 503 (not the leader yet, busy), 429 (refused too often) and 5xx are worth retrying; any other 4xx is final. */
  get retryable(): boolean {
    return this.status === 0 || this.status >= 500 || this.status === 429;
  }
}

export const RETRY_BASE_MS = 1000;
export const RETRY_MAX_MS = 30_000;

/**
 * How long to wait before retry `attempt` (1, 2, ...): what the server asked for (Retry-After)
 * plus an exponential backoff with jitter, so a fleet turned away at once does not come back
 * at once. The backoff's lower half is fixed, its upper half random.
 */
export function retryDelayMs(attempt: number, err: unknown, random: () => number = Math.random): number {
  const backoff = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.max(0, attempt - 1));
  const asked = err instanceof AgentRequestError ? (err.retryAfterMs ?? 0) : 0;
  return Math.round(asked + backoff / 2 + random() * (backoff / 2));
}

/** Reports are spread by ±10% of the interval, so agents started together drift apart instead of reporting in one burst. */
export function jitteredIntervalMs(intervalMs: number, random: () => number = Math.random): number {
  return Math.round(intervalMs * (0.9 + 0.2 * random()));
}

export function parseRetryAfter(value: string | string[] | undefined): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return undefined;
  const seconds = Number(text);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}
