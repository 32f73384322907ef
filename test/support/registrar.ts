import type { Client } from '@temporalio/client';
import { instanceWorkflowId } from '../../common/names';
import type { GroupRef } from '../../common/types';
import { groupStatus } from '../../client/ops/status';
import { agentRegisteredSignal, instanceHealthSignal, type HealthTransition } from '../../workflows/definitions';

/**
 * Stands in for the agent API's effect on workflows: signals "registered" for
 * every running instance of a group (except those told to stay silent), as the
 * leader does after an agent registers. The agent API itself is tested in
 * test/integration/agent*.test.ts; here the workflow side is under test.
 */
export class Registrar {
  readonly silent = new Set<string>();
  private readonly registered = new Set<string>();
  private timer?: NodeJS.Timeout;
  private busy = false;
  private ticking: Promise<void> = Promise.resolve();

  constructor(
    private readonly client: Client,
    private readonly ref: GroupRef,
  ) {}

  start(everyMs = 300): this {
    this.timer = setInterval(() => {
      if (!this.busy) this.ticking = this.tick();
    }, everyMs);
    return this;
  }

  /** Stops, and waits for a tick still talking to Temporal (a call left retrying would outlive the connection). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.ticking;
  }

  async health(instanceId: string, status: HealthTransition['status'], reason = 'test'): Promise<void> {
    await this.client.workflow
      .getHandle(instanceWorkflowId(this.ref.shard, instanceId))
      .signal(instanceHealthSignal, { instanceId, status, reason, at: new Date().toISOString() });
  }

  private async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const status = await groupStatus(this.client, this.ref);
      for (const m of status.members) {
        if (m.phase !== 'running' || this.silent.has('*') || this.silent.has(m.instanceId) || this.registered.has(m.instanceId)) continue;
        await this.client.workflow.getHandle(instanceWorkflowId(this.ref.shard, m.instanceId)).signal(agentRegisteredSignal, {
          instanceId: m.instanceId,
          certificateSerial: `test-${m.instanceId}`,
          at: new Date().toISOString(),
        });
        this.registered.add(m.instanceId);
      }
    } catch {
      // The group may be mid-continue-as-new; the next tick retries.
    } finally {
      this.busy = false;
    }
  }
}
