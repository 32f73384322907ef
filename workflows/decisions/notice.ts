/**
 * Termination notices (spot interruption): the host is reclaimed at a deadline the
 * agent read from IMDS. Pure timing decisions for the group and the instance workflow.
 */

/** The deadline in ms, or undefined without a notice (or with a deadline that does not parse). */
function deadlineMs(noticeDeadline: string | undefined): number | undefined {
  const at = noticeDeadline === undefined ? NaN : Date.parse(noticeDeadline);
  return Number.isNaN(at) ? undefined : at;
}

/**
 * When draining must start for the drain to end before the host is reclaimed: the
 * deadline minus the drain timeout. Undefined without a notice.
 */
export function mustDrainBy(noticeDeadline: string | undefined, drainTimeoutMs: number): number | undefined {
  const at = deadlineMs(noticeDeadline);
  return at === undefined ? undefined : at - drainTimeoutMs;
}

/**
 * How long to wait for connections to drain: the drain timeout, but never past the
 * notice's deadline, when the host goes away anyway (the deregistration itself still
 * happens, however late).
 */
export function drainBudgetMs(drainTimeoutMs: number, noticeDeadline: string | undefined, now: number): number {
  const at = deadlineMs(noticeDeadline);
  return at === undefined ? drainTimeoutMs : Math.max(0, Math.min(drainTimeoutMs, at - now));
}
