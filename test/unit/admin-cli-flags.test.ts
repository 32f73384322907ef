/** The group admin commands read --timeout before they act: a bad one is refused, naming the flag, with nothing created or deleted. */
import { runCli } from '../support/cli';

// Commander refuses a flag by printing the error and exiting: stopped here before the process goes.
beforeEach(() => {
  jest.spyOn(process, 'exit').mockImplementation((code?: string | number | null) => {
    throw new Error(`process.exit(${String(code)})`);
  });
});
afterEach(() => jest.restoreAllMocks());

it.each([
  ['group create', ['group', 'create', 'default/api', '--template', 'web', '--size', '1', '--wait']],
  ['group delete', ['group', 'delete', 'default/api', '--wait']],
  ['group status', ['group', 'status', 'default/api', '--wait']],
])('%s --timeout soon', async (_what, args) => {
  // No Temporal and no S3 to reach: an attempt to act would fail differently (and later).
  const out = await runCli(...args, '--timeout', 'soon', '--shard', 'nowhere', '--bucket', 'nowhere');
  expect(out.code).toBe(1);
  expect(out.stdout).toBe('');
  expect(out.stderr).toMatch(/--timeout <duration>' argument 'soon' is invalid/);
  expect(out.stderr).toContain('process.exit(1)');
});
