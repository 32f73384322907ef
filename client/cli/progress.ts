/**
 * Progress of a long operation (a group converging, rotating or draining): a bar on a terminal
 * (cli-progress), one line per change otherwise, so logs and tests read it too.
 */
import { SingleBar, Presets } from 'cli-progress';
import type { GroupStatus } from '../../common/types';

export interface Progress {
  update(status: GroupStatus): void;
  stop(): void;
}

/** `done` says how far a status is towards the goal, of `total`. */
export function groupProgress(label: string, total: number, done: (s: GroupStatus) => number, out: NodeJS.WriteStream = process.stdout): Progress {
  const describe = (s: GroupStatus) => `desired ${s.desired}, running ${s.running} (in service ${s.inService}), pending ${s.pending}, draining ${s.draining}`;
  if (out.isTTY) {
    const bar = new SingleBar({ format: `${label} [{bar}] {value}/{total} · {detail}`, stream: out, hideCursor: true }, Presets.shades_classic);
    bar.start(Math.max(1, total), 0, { detail: '' });
    return {
      update: (s) => bar.update(Math.min(total, done(s)), { detail: describe(s) }),
      stop: () => bar.stop(),
    };
  }
  let last = '';
  return {
    update: (s) => {
      const line = `${label}: ${Math.min(total, done(s))}/${total} · ${describe(s)}`;
      if (line !== last) out.write(`${line}\n`);
      last = line;
    },
    stop: () => undefined,
  };
}
