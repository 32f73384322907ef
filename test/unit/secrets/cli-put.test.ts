/** `nstance secrets put --file` that cannot be read names the flag and the file, before any store is opened. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../../support/cli';

test('--file that does not exist: "--file: cannot read <path>: <reason>"', async () => {
  const missing = join(mkdtempSync(join(tmpdir(), 'nstance-secrets-put-')), 'missing');
  // No S3 to reach: the read must fail first, and say so.
  const out = await runCli('secrets', 'put', 'files/default/web/etc/app/token', '--file', missing, '--shard', 'nowhere', '--bucket', 'nowhere');
  expect(out.code).toBe(1);
  expect(out.stdout).toBe('');
  expect(out.stderr).toContain(`--file: cannot read ${missing}: ENOENT: no such file or directory`);
});

test('--file that is a directory: the same shape, with its reason', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nstance-secrets-put-'));
  const out = await runCli('secrets', 'put', 'x', '--file', dir, '--shard', 'nowhere', '--bucket', 'nowhere');
  expect(out.code).toBe(1);
  expect(out.stderr).toContain(`--file: cannot read ${dir}: EISDIR`);
});
