/**
 * The agent's record of the files it wrote: pruning removes only recorded files that are no longer
 * declared, never a file it did not write, a directory, or anything outside its files root.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WrittenFiles } from '../../client/agent/written-files';

function fixture() {
  const stateDir = mkdtempSync(join(tmpdir(), 'nstance-written-state-'));
  const root = mkdtempSync(join(tmpdir(), 'nstance-written-root-'));
  const put = (path: string, content = 'x') => {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), content);
  };
  return { stateDir, root, put, at: (path: string) => join(root, path) };
}

test('removes the recorded files no longer kept, and nothing it did not record', async () => {
  const { stateDir, root, put, at } = fixture();
  const written = new WrittenFiles(stateDir, root);
  await written.record(['/etc/app/a', '/etc/app/b']);
  put('etc/app/a');
  put('etc/app/b');
  put('etc/app/someone-elses');
  expect(await written.prune(new Set(['/etc/app/a']))).toEqual(['/etc/app/b']);
  expect([existsSync(at('etc/app/a')), existsSync(at('etc/app/b')), existsSync(at('etc/app/someone-elses'))]).toEqual([true, false, true]);
  expect(await written.list()).toEqual(['/etc/app/a']);
});

test('the record survives a restart (a new agent process reads it from the state directory)', async () => {
  const { stateDir, root, put, at } = fixture();
  await new WrittenFiles(stateDir, root).record(['/etc/app/old']);
  put('etc/app/old');
  expect(JSON.parse(readFileSync(join(stateDir, 'written-files.json'), 'utf8'))).toEqual({ paths: ['/etc/app/old'] });
  expect(await new WrittenFiles(stateDir, root).prune(new Set())).toEqual(['/etc/app/old']);
  expect(existsSync(at('etc/app/old'))).toBe(false);
});

test('a path that climbs out of the root is removed inside it; a directory at a recorded path is left', async () => {
  const { stateDir, root, at } = fixture();
  const outside = mkdtempSync(join(tmpdir(), 'nstance-written-outside-'));
  writeFileSync(join(outside, 'victim'), 'keep');
  const written = new WrittenFiles(stateDir, root);
  await written.record([`/../../..${outside}/victim`, '/etc/app/dir']);
  mkdirSync(at('etc/app/dir'), { recursive: true });
  await written.prune(new Set());
  expect(readFileSync(join(outside, 'victim'), 'utf8')).toBe('keep');
  expect(existsSync(at('etc/app/dir'))).toBe(true);
  expect(await written.list()).toEqual([]);
});

test('an already missing file is simply forgotten', async () => {
  const { stateDir, root } = fixture();
  const written = new WrittenFiles(stateDir, root);
  await written.record(['/etc/app/gone']);
  expect(await written.prune(new Set())).toEqual(['/etc/app/gone']);
  expect(await written.list()).toEqual([]);
});
