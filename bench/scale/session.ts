/**
 * One worker process and one simulated fleet for a stretch of the benchmark, warmed up
 * before anything is timed: the worker leads the shard (agent API serving), the group
 * has launched one instance that registered and went in service, and is back at 0. A
 * fresh worker per measured size starts with full client-side token buckets and its own
 * memory figures.
 */
import type { WorkerProcess } from '../../test/support/processes';
import { TAG } from '../../common/names';
import type { FleetProcess } from './fleet-process';
import { launchTemplateOf, type LaunchTemplate } from './floor';
import { cpuNow, cpuDiff } from './proc';
import { inServiceOf, type ScaleStack } from './stack';
import { PhaseWatch } from './watch';

export class Session {
  private told: NodeJS.Timeout | undefined;

  private constructor(
    readonly stack: ScaleStack,
    readonly worker: WorkerProcess,
    readonly fleet: FleetProcess,
  ) {
    if (stack.options.fleetDiscovery === 'told') this.tellFleet();
  }

  /** Forwards what EC2 launched and terminated from now on (the proxy's ledger) to the fleet, as instances boot their agents. */
  private tellFleet(): void {
    let next = this.stack.proxy.instanceEvents.length;
    this.told = setInterval(() => {
      const events = this.stack.proxy.instanceEvents;
      for (; next < events.length; next++) {
        const e = events[next];
        if (e) this.fleet.tell({ type: e.kind, ids: e.ids });
      }
    }, 250);
  }

  static async start(stack: ScaleStack, name: string): Promise<Session> {
    const worker = await stack.startWorker();
    const fleet = await stack.startFleet(worker, `fleet-${name}`).catch(async (err: Error) => {
      await stack.stopWorker(worker);
      throw err;
    });
    return new Session(stack, worker, fleet);
  }

  /** A watch of the shard's instances and group, with this session's worker and fleet. */
  watch(startedAt: number, label?: string): PhaseWatch {
    return new PhaseWatch(this.stack, { tag: { key: TAG.shard, value: this.stack.shard }, held: () => this.stack.held.now(), startedAt, worker: this.worker, fleet: this.fleet, group: true, label }).start();
  }

  cpu(): Record<string, number> {
    const { moto, temporal } = this.stack.serverGroups();
    return cpuNow({ worker: this.worker.child.pid, fleet: this.fleet.pid, motoGroup: moto, temporalGroup: temporal });
  }

  cpuSince(before: Record<string, number>): Record<string, number> {
    return cpuDiff(this.cpu(), before);
  }

  scale(size: number): Promise<string> {
    return this.stack.cli(['group', 'scale', 'default/web', String(size)]);
  }

  /** Scales to 0 and waits until EC2 holds none of the shard's instances and the group has no member left. */
  async drainToZero(timeoutMs = this.stack.options.phaseTimeoutMs): Promise<number> {
    const startedAt = Date.now();
    const watch = this.watch(startedAt, 'scale to 0');
    try {
      await this.scale(0);
      const emptyMs = await watch.until('the group and EC2 to be empty', (v) => v.ec2.held === 0 && !!v.group && v.group.desired === 0 && v.group.running + v.group.pending + v.group.draining === 0, timeoutMs);
      const confirmed = await watch.confirm();
      if (confirmed.held > 0) throw new Error(`the proxy's ledger shows the shard empty, but EC2 still holds ${confirmed.held} of its instances`);
      return emptyMs;
    } finally {
      await watch.stop();
    }
  }

  /** One instance up to in service and back to 0; returns its launch parameters (for the floor to copy). */
  async warmUp(): Promise<LaunchTemplate> {
    const watch = this.watch(Date.now());
    let template: LaunchTemplate;
    try {
      await this.scale(1);
      await watch.until('the warm-up instance to be in service', (v) => !!v.group && inServiceOf(v.group) >= 1 && v.ec2.held >= 1, 5 * 60_000);
      const id = [...(watch.last?.ec2.heldIds ?? [])][0];
      if (!id) throw new Error('the warm-up instance is in service but EC2 shows none');
      template = await launchTemplateOf(this.stack, id);
    } finally {
      await watch.stop();
    }
    await this.drainToZero(5 * 60_000);
    return template;
  }

  /** At once, without a graceful shutdown (an interrupted benchmark). */
  async kill(): Promise<void> {
    if (this.told) clearInterval(this.told);
    this.worker.kill('SIGKILL');
    await Promise.all([this.worker.exited, this.fleet.stop(2_000)]);
  }

  async stop(): Promise<void> {
    if (this.told) clearInterval(this.told);
    await this.fleet.stop().catch(() => undefined);
    await this.stack.stopWorker(this.worker);
  }
}
