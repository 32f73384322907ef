/** The simulated fleet's child process, seen from the benchmark: start it, read its stats, stop it. */
import { fork, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FleetStats } from '../../client/agent/fleet';
import type { FleetChildConfig, FleetCommand, FleetMessage } from './fleet-child';

export interface FleetReport {
  stats?: FleetStats;
  agentErrors: Record<string, number>;
}

export class FleetProcess {
  private last: FleetReport = { agentErrors: {} };
  private readonly exited: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    readonly logFile: string,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.on('message', (m: FleetMessage) => {
      if (m.type === 'stats' || m.type === 'stopped') this.last = { stats: m.stats, agentErrors: m.agentErrors };
    });
  }

  static async start(config: FleetChildConfig, logDir: string, name: string): Promise<FleetProcess> {
    const logFile = path.join(logDir, `${name}.log`);
    const out = fs.openSync(logFile, 'a');
    const child = fork(path.join(__dirname, 'fleet-child.js'), [JSON.stringify(config)], { stdio: ['ignore', out, out, 'ipc'], env: { ...process.env, NODE_NO_WARNINGS: '1' } });
    fs.closeSync(out);
    const fleet = new FleetProcess(child, logFile);
    await new Promise<void>((resolve, reject) => {
      const onMessage = (m: FleetMessage) => {
        if (m.type === 'ready') resolve();
        if (m.type === 'failed') reject(new Error(`simulated fleet failed to start: ${m.error}`));
      };
      child.on('message', onMessage);
      child.once('exit', (code) => reject(new Error(`simulated fleet exited (code ${code}) before it was ready; see ${logFile}`)));
    });
    return fleet;
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  tell(command: FleetCommand): void {
    if (this.child.exitCode === null && this.child.connected) this.child.send(command);
  }

  report(): FleetReport {
    return this.last;
  }

  /** Asks it to stop its agents and report once more; kills it if it takes too long. */
  async stop(timeoutMs = 20_000): Promise<FleetReport> {
    this.tell({ type: 'stop' });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
    return this.last;
  }
}
