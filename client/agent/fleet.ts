/**
 * A simulated fleet: one in-process agent per running emulator instance of a
 * shard, booted from that instance's own userdata (read back from EC2), so the
 * nonce an agent uses is exactly the one the launch activity rendered. The
 * registration address in userdata is the leader network IP, which does not
 * exist on a laptop: `resolveAddress` maps it to where the agent API listens.
 *
 * It stays cheap at fleet size, so that a benchmark measures the orchestrator and not
 * the simulator: userdata read once per new instance (a few at a time), agents that only
 * talk when theirs would (register, fetch files, report health at the interval the agent
 * API hands out), and a choice of how instances are found:
 * - `poll` (default): one paginated DescribeInstances of the shard's running instances per poll;
 * - `told`: whoever launches instances tells the fleet (launched()/terminated()), as a real
 *   instance boots its agent by itself; the fleet describes only the ids it was told of
 *   and has not seen running yet. Describing every running instance every few seconds is
 *   what a simulator at 2,000 instances must not do to a shared emulator.
 */
import { DescribeInstanceAttributeCommand, DescribeInstancesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { join } from 'node:path';
import { TAG } from '../../common/names';
import { Agent, type HealthReportBody } from './agent';
import { ImdsNotices } from './imds';
import { parseAgentArgs } from './userdata';

export interface FleetOptions {
  ec2: EC2Client;
  shard: string;
  /** The cluster CA certificate (cluster/ca.crt). Unset: each agent discovers the CA its nonce pins, as a real instance does. */
  caPem?: string;
  /** Registration address from userdata (e.g. "10.0.1.10:8443") → address to dial (e.g. "127.0.0.1:41234"). */
  resolveAddress: (registrationAddress: string) => string;
  /** Each agent gets <stateRoot>/<ec2 instance id>. */
  stateRoot: string;
  /** How often to look for new instances (default 500 ms; a benchmark's fleet looks every few seconds). */
  pollMs?: number;
  /** How instances are found (see above); default `poll`. */
  discovery?: 'poll' | 'told';
  /** Userdata reads in flight at once when many instances appear together (default 8). */
  userdataConcurrency?: number;
  /** Overrides the interval the agent API hands out. */
  healthIntervalMs?: number;
  /** Each agent's periodic files fetch, every N reports (default 10). */
  filesEvery?: number;
  /**
   * The IMDS an instance's agent polls for termination notices, as `nstance agent` does
   * (tests point it at a fake). Unset, or undefined for an instance: that agent does not
   * poll; setHealth() can still make it report a notice.
   */
  imdsUrl?: (ec2InstanceId: string) => string | undefined;
  noticePollMs?: number;
  log?: (line: string) => void;
}

export interface FleetMember {
  ec2InstanceId: string;
  /** Nstance instance id (from the instance's tag). */
  instanceId: string;
  agent: Agent;
}

/** What the fleet is doing, for a benchmark's progress and report. */
export interface FleetStats {
  /** Agents started (one per running instance seen, ever). */
  agents: number;
  /** Agents holding a certificate. */
  registered: number;
  /** Agents that gave up (e.g. a rejected nonce) or whose instance went away before they registered. */
  stoppedUnregistered: number;
  /** Agents whose last attempt failed (they retry). */
  failing: number;
  /** Instances without an agent command line in their userdata. */
  skipped: number;
  polls: number;
  /** Duration of the last look at EC2 (describe and userdata reads), ms. */
  lastPollMs: number;
}

export class SimulatedFleet {
  readonly members = new Map<string, FleetMember>();
  /** Instances whose userdata had no agent command line (nothing to run). */
  readonly skipped = new Set<string>();
  /** Agents started so far: each dials from its own loopback address. */
  private agentsStarted = 0;
  private readonly health = new Map<string, HealthReportBody>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private polling: Promise<void> = Promise.resolve();
  private polls = 0;
  private lastPollMs = 0;
  /** `told` discovery: launched ids not yet seen running in the shard. */
  private readonly told = new Set<string>();

  constructor(private readonly options: FleetOptions) {}

  start(): this {
    const loop = () => {
      this.polling = this.poll()
        .catch((err: Error) => this.options.log?.(`fleet: ${err.message}`))
        .finally(() => {
          if (!this.stopped) {
            this.timer = setTimeout(loop, this.options.pollMs ?? 500);
            this.timer.unref();
          }
        });
    };
    loop();
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.polling;
    for (const m of this.members.values()) m.agent.stop();
  }

  stats(): FleetStats {
    let registered = 0;
    let stoppedUnregistered = 0;
    let failing = 0;
    for (const m of this.members.values()) {
      if (m.agent.serialNumber) registered++;
      else if (!m.agent.running) stoppedUnregistered++;
      if (m.agent.lastError && m.agent.running) failing++;
    }
    return { agents: this.members.size, registered, stoppedUnregistered, failing, skipped: this.skipped.size, polls: this.polls, lastPollMs: this.lastPollMs };
  }

  /** Nstance ids of the agents that hold a certificate. */
  registered(): string[] {
    return [...this.members.values()].filter((m) => m.agent.serialNumber).map((m) => m.instanceId).sort();
  }

  member(instanceId: string): FleetMember | undefined {
    return [...this.members.values()].find((m) => m.instanceId === instanceId);
  }

  /** Makes one agent report `report` from now on (unhealthy, a termination notice, healthy again). */
  setHealth(instanceId: string, report: HealthReportBody): void {
    this.health.set(instanceId, report);
  }

  /** Stops one agent as if its instance hung: it stops reporting (missed health). */
  silence(instanceId: string): void {
    this.member(instanceId)?.agent.stop();
  }

  /** `told` discovery: these instances were launched (their agents start once EC2 shows them running). */
  launched(ec2InstanceIds: readonly string[]): void {
    for (const id of ec2InstanceIds) if (!this.members.has(id) && !this.skipped.has(id)) this.told.add(id);
  }

  /** `told` discovery: these instances were terminated (their agents stop). */
  terminated(ec2InstanceIds: readonly string[]): void {
    for (const id of ec2InstanceIds) {
      this.told.delete(id);
      const m = this.members.get(id);
      if (m?.agent.running) m.agent.stop();
    }
  }

  /** One pass: start agents for new running instances, stop those whose instance is gone. */
  async poll(): Promise<void> {
    if (this.options.discovery === 'told') return this.pollTold();
    const started = Date.now();
    const running = await this.runningInstances();
    const fresh = [...running].filter(([ec2Id]) => !this.members.has(ec2Id) && !this.skipped.has(ec2Id));
    await eachLimited(fresh, this.options.userdataConcurrency ?? 8, async ([ec2Id, instanceId]) => {
      if (this.stopped) return;
      const userdata = await this.userdata(ec2Id);
      if (this.stopped || this.members.has(ec2Id)) return;
      this.startAgent(ec2Id, instanceId, userdata);
    });
    for (const [ec2Id, m] of this.members) if (!running.has(ec2Id) && m.agent.running) m.agent.stop();
    this.polls++;
    this.lastPollMs = Date.now() - started;
  }

  /** `told` discovery: describes only the launched ids not yet running (in chunks EC2 accepts), starts their agents. */
  private async pollTold(): Promise<void> {
    if (this.told.size === 0) return;
    const started = Date.now();
    const ids = [...this.told];
    const running = new Map<string, string>();
    for (let i = 0; i < ids.length; i += 200) {
      const chunk = ids.slice(i, i + 200);
      // By filter, not InstanceIds: an id EC2 does not show yet (eventual consistency) must not fail the others.
      const out = await this.options.ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'instance-id', Values: chunk }] }));
      for (const inst of (out.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
        if (!inst.InstanceId) continue;
        const state = inst.State?.Name;
        const shard = inst.Tags?.find((t) => t.Key === TAG.shard)?.Value;
        const id = inst.Tags?.find((t) => t.Key === TAG.instanceId)?.Value;
        if (state === 'running' && shard === this.options.shard && id) running.set(inst.InstanceId, id);
        // Not ours, or already going: nothing will ever run there.
        else if (state !== 'pending' || shard !== this.options.shard) this.told.delete(inst.InstanceId);
      }
    }
    await eachLimited([...running], this.options.userdataConcurrency ?? 8, async ([ec2Id, instanceId]) => {
      if (this.stopped) return;
      const userdata = await this.userdata(ec2Id);
      this.told.delete(ec2Id);
      if (this.stopped || this.members.has(ec2Id)) return;
      this.startAgent(ec2Id, instanceId, userdata);
    });
    this.polls++;
    this.lastPollMs = Date.now() - started;
  }

  private startAgent(ec2Id: string, instanceId: string, userdata: string | undefined): void {
    const args = userdata === undefined ? undefined : parseAgentArgs(userdata);
    if (!args) {
      this.skipped.add(ec2Id);
      return;
    }
    const imdsUrl = this.options.imdsUrl?.(ec2Id);
    const log = this.options.log && ((line: string) => this.options.log?.(`[${instanceId}] ${line}`));
    const agent = new Agent({
      registerAddress: args.register,
      connectAddress: this.options.resolveAddress(args.register),
      localAddress: this.options.resolveAddress(args.register).startsWith('127.') ? loopbackSourceAddress(this.agentsStarted++) : undefined,
      nonce: args.nonce,
      caPem: this.options.caPem,
      stateDir: join(this.options.stateRoot, ec2Id),
      ip: undefined,
      hostname: `ip-${ec2Id}`,
      healthIntervalMs: this.options.healthIntervalMs,
      filesEvery: this.options.filesEvery,
      probe: () => this.health.get(instanceId) ?? { status: 'healthy' },
      notices: imdsUrl === undefined ? undefined : new ImdsNotices({ baseUrl: imdsUrl, log }),
      noticePollMs: this.options.noticePollMs,
      log,
    });
    this.members.set(ec2Id, { ec2InstanceId: ec2Id, instanceId, agent });
    agent.start();
  }

  private async runningInstances(): Promise<Map<string, string>> {
    const found = new Map<string, string>();
    let token: string | undefined;
    do {
      const out = await this.options.ec2.send(
        new DescribeInstancesCommand({
          Filters: [
            { Name: `tag:${TAG.shard}`, Values: [this.options.shard] },
            { Name: 'instance-state-name', Values: ['running'] },
          ],
          MaxResults: 1000,
          NextToken: token,
        }),
      );
      for (const i of (out.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
        const id = i.Tags?.find((t) => t.Key === TAG.instanceId)?.Value;
        if (i.InstanceId && id) found.set(i.InstanceId, id);
      }
      token = out.NextToken;
    } while (token);
    return found;
  }

  private async userdata(ec2InstanceId: string): Promise<string | undefined> {
    const out = await this.options.ec2.send(new DescribeInstanceAttributeCommand({ InstanceId: ec2InstanceId, Attribute: 'userData' }));
    const value = out.UserData?.Value;
    return value ? Buffer.from(value, 'base64').toString('utf8') : undefined;
  }
}

/** Runs `work` over `items`, at most `limit` at a time; one item's failure does not stop the others. */
async function eachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const errors: Error[] = [];
  const lane = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await work(item).catch((err: Error) => errors.push(err));
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  if (errors.length > 0) throw new Error(`${errors.length} of ${items.length} new instances: ${errors[0]?.message}`);
}

/** A distinct loopback address per simulated instance (127.10.0.1 onwards; Linux answers all of 127/8). */
export function loopbackSourceAddress(index: number): string {
  return `127.10.${Math.floor(index / 250) % 250}.${(index % 250) + 1}`;
}
