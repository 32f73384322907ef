/**
 * Progress of a long operation (a group converging, rotating or draining): a bar on a terminal
 * (cli-progress), one line per change otherwise, so logs and tests read it too.
 */
import { SingleBar, Presets } from 'cli-progress';
import type { GroupStatus } from '../../common/types';
import type { KeyRotationProgress } from '../../workflows/key-rotation-api';

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

export interface RotationProgress {
  show(progress: KeyRotationProgress): void;
  stop(): void;
}

/**
 * `nstance secrets rotate-key`'s progress: on a terminal a bar of this pass's secrets (with the pass
 * and how many were re-encrypted); otherwise one line per change; with --json nothing (the result
 * alone is printed, on stdout).
 */
export function rotationProgress(out: NodeJS.WriteStream, quiet: boolean): RotationProgress {
  if (quiet) return { show: () => undefined, stop: () => undefined };
  if (out.isTTY) {
    const bar = new SingleBar({ format: 'pass {pass} [{bar}] {value}/{total} secrets | {rewritten} re-encrypted', stream: out });
    let started = false;
    return {
      show: (p) => {
        const total = p.plan?.total ?? 0;
        const payload = { pass: p.pass, rewritten: p.totals.rewritten };
        if (!started) bar.start(total, 0, payload);
        started = true;
        bar.setTotal(total);
        bar.update(Math.min(p.pass_totals.scanned, total), payload);
      },
      stop: () => bar.stop(),
    };
  }
  let last = '';
  return {
    show: (p) => {
      const line = `pass ${p.pass} (${p.phase}): ${p.pass_totals.scanned}/${p.plan?.total ?? 0} secrets, ${p.totals.rewritten} re-encrypted`;
      if (line !== last) out.write(`${line}\n`);
      last = line;
    },
    stop: () => undefined,
  };
}
