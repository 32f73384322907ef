/**
 * Which of the shard's instances still run, for every mTLS endpoint: a client certificate is valid
 * for months and nothing revokes it, so an agent is served only while its instance workflow runs.
 *
 * At fleet size a describe per request (2,000 agents reporting every minute: 33/s) is the wrong
 * cost. The shard's running instance workflows are listed instead, one paginated visibility list
 * (2 pages at 2,000) per `ttlMs`, refreshed when a request finds the listing stale, one load at a
 * time. An instance in the listing is running. One absent from it is asked about directly
 * (describe: consistent), because visibility lags: it may have started since the listing. A
 * closed or unknown instance is final (instance ids are never reused): remembered, so its agent
 * asking every minute costs nothing.
 */
import type { WorkflowExecutionStatusName } from '@temporalio/client';
import type { AgentApiContext } from './context';
import { HttpError } from './http';
import type { AgentIdentity } from './mtls';

export type InstanceStatus = WorkflowExecutionStatusName | 'NOT_FOUND';

export interface LiveInstancesOptions {
  /** The shard's running instance ids, as visibility lists them. */
  list: () => Promise<Set<string>>;
  /** A consistent read of one instance's workflow status. */
  describe: (instanceId: string) => Promise<InstanceStatus>;
  /** How old a listing may be before the next request refreshes it. */
  ttlMs: number;
  /** Closed instances remembered at most (the oldest are forgotten first, and asked again). */
  maxGone?: number;
  now?: () => number;
  onError?: (err: Error) => void;
}

export class LiveInstances {
  private listing: { ids: Set<string>; at: number } | undefined;
  /** After a failed listing, the next is tried no sooner than this (requests describe meanwhile). */
  private retryListingAt = 0;
  private loading: Promise<void> | undefined;
  private readonly gone = new Map<string, InstanceStatus>();
  private readonly now: () => number;
  /** Calls made, for tests and the fleet-size figures. */
  readonly calls = { lists: 0, describes: 0 };

  constructor(private readonly options: LiveInstancesOptions) {
    this.now = options.now ?? Date.now;
  }

  async status(instanceId: string): Promise<InstanceStatus> {
    const gone = this.gone.get(instanceId);
    if (gone) return gone;
    await this.fresh();
    if (this.listing?.ids.has(instanceId)) return 'RUNNING';
    this.calls.describes++;
    const status = await this.options.describe(instanceId);
    if (status !== 'RUNNING') this.forget(instanceId, status);
    // Running but not listed: started after the listing. The next listing has it.
    else this.listing?.ids.add(instanceId);
    return status;
  }

  private async fresh(): Promise<void> {
    if (this.listing && this.now() - this.listing.at < this.options.ttlMs) return;
    if (!this.listing && this.now() < this.retryListingAt) return;
    this.loading ??= (async () => {
      const at = this.now();
      try {
        this.calls.lists++;
        this.listing = { ids: await this.options.list(), at };
      } catch (err) {
        // Without a listing every instance is described: slower, never wrong. Visibility is not
        // asked again on every request while it fails.
        this.listing = undefined;
        this.retryListingAt = this.now() + Math.min(this.options.ttlMs, 5_000);
        this.options.onError?.(err as Error);
      } finally {
        this.loading = undefined;
      }
    })();
    await this.loading;
  }

  private forget(instanceId: string, status: InstanceStatus): void {
    this.gone.set(instanceId, status);
    const max = this.options.maxGone ?? 10_000;
    if (this.gone.size > max) this.gone.delete(this.gone.keys().next().value as string);
  }
}

/**
 * Refuses (403, audited) a certificate whose instance no longer runs: called by every mTLS endpoint
 * before it does anything.
 */
export async function requireLiveInstance(ctx: AgentApiContext, who: AgentIdentity, endpoint: string, remote?: string): Promise<void> {
  const status = await ctx.instanceStatus(who.instanceId);
  if (status === 'RUNNING') return;
  const message =
    status === 'NOT_FOUND'
      ? `certificate of ${who.instanceId}: this shard has no workflow for that instance; ${endpoint} serves only running instances`
      : `certificate of ${who.instanceId}: its instance workflow is ${status} (the instance is gone); ${endpoint} serves only running instances`;
  ctx.reject({
    action: 'agent.auth.rejected',
    reason: 'instance-not-running',
    remote,
    tenant: who.tenant,
    group: who.group,
    instanceIds: [who.instanceId],
    details: { endpoint, message, workflowStatus: status, serialNumber: who.serialNumber },
  });
  throw new HttpError(403, 'instance-not-running', message);
}
