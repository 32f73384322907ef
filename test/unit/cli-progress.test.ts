/** `nstance secrets rotate-key`'s progress: a bar on a terminal, one line per change otherwise, nothing with --json. */
import { Writable } from 'node:stream';
import { rotationProgress } from '../../client/cli/progress';
import { emptyTotals, type KeyRotationProgress } from '../../workflows/key-rotation-api';

function stream(isTTY: boolean): { out: NodeJS.WriteStream; text: () => string } {
  let written = '';
  const out = new Writable({
    write(chunk: Buffer, _encoding, done) {
      written += chunk.toString();
      done();
    },
  }) as unknown as NodeJS.WriteStream;
  Object.assign(out, { isTTY, columns: 120, cursorTo: (_x: number, _y?: unknown, cb?: () => void) => (cb?.(), true), clearLine: (_d: number, cb?: () => void) => (cb?.(), true), moveCursor: () => true });
  return { out, text: () => written };
}

const at = (pass: number, phase: KeyRotationProgress['phase'], scanned: number, rewritten: number): KeyRotationProgress => ({
  phase,
  pass,
  plan: { keyId: 'k-new', oldKeyIds: ['k-old'], location: 's3://b/cluster/secret/', total: 362 },
  pass_totals: { ...emptyTotals(), scanned },
  totals: { ...emptyTotals(), rewritten },
  unreadable: [],
  runs: 1,
});

test('without a terminal: one line per change, saying the pass, how far it is and how many were re-encrypted', () => {
  const { out, text } = stream(false);
  const progress = rotationProgress(out, false);
  for (const p of [at(1, 'rotating', 10, 4), at(1, 'rotating', 10, 4), at(1, 'rotating', 362, 60), at(2, 'verifying', 362, 60)]) progress.show(p);
  progress.stop();
  expect(text()).toBe('pass 1 (rotating): 10/362 secrets, 4 re-encrypted\npass 1 (rotating): 362/362 secrets, 60 re-encrypted\npass 2 (verifying): 362/362 secrets, 60 re-encrypted\n');
});

test('on a terminal: a bar of the pass, with its count and how many were re-encrypted', () => {
  const { out, text } = stream(true);
  const progress = rotationProgress(out, false);
  progress.show(at(1, 'rotating', 120, 7));
  progress.stop();
  expect(text()).toMatch(/pass 1 \[[^\]]+\] 120\/362 secrets \| 7 re-encrypted/);
});

test('with --json: nothing but the result', () => {
  const { out, text } = stream(true);
  const progress = rotationProgress(out, true);
  progress.show(at(1, 'rotating', 120, 7));
  progress.stop();
  expect(text()).toBe('');
});
