/** The agent's file writes: atomic (temp + rename), modes set explicitly and never world-writable, unchanged files left alone. */
import { chmodSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { safeMode, writeFileAtomically } from '../../../client/agent/file-writer';

const root = () => mkdtempSync(join(tmpdir(), 'nstance-files-'));

test('writes under the root with the asked mode, whatever the umask; nothing climbs out', async () => {
  const dir = root();
  const previous = process.umask(0o077);
  try {
    const written = await writeFileAtomically(dir, { path: '/etc/app/motd', mode: '0644', content: 'hello' });
    expect(written.changed).toBe(true);
    expect(statSync(join(dir, 'etc/app/motd')).mode & 0o777).toBe(0o644);
  } finally {
    process.umask(previous);
  }
  await writeFileAtomically(dir, { path: '../../escape', mode: '0600', content: 'x' });
  expect(readFileSync(join(dir, 'escape'), 'utf8')).toBe('x');
});

test('a world-writable mode is narrowed, an unparseable one becomes 0600', () => {
  expect(safeMode('0666')).toBe(0o664);
  expect(safeMode('rw-')).toBe(0o600);
  expect(safeMode('0640')).toBe(0o640);
});

test('replaces by rename (no temp file left), skips an identical file, and restores a changed mode', async () => {
  const dir = root();
  await writeFileAtomically(dir, { path: 'token', mode: '0600', content: 'one' });
  expect((await writeFileAtomically(dir, { path: 'token', mode: '0600', content: 'one' })).changed).toBe(false);
  const written = await writeFileAtomically(dir, { path: 'token', mode: '0600', content: 'two' });
  expect(written).toMatchObject({ changed: true, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
  expect(readFileSync(join(dir, 'token'), 'utf8')).toBe('two');
  chmodSync(join(dir, 'token'), 0o644);
  expect((await writeFileAtomically(dir, { path: 'token', mode: '0600', content: 'two' })).changed).toBe(true);
  expect(statSync(join(dir, 'token')).mode & 0o777).toBe(0o600);
  expect(readdirSync(dir)).toEqual(['token']);
});
