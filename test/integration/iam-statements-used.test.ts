/**
 * "Nothing more": every statement of the policies `nstance iam policy` generated for this run's configs,
 * and every action in each, allowed at least one AWS call the scenarios really made. Every IAM proof of
 * the run (the shard fixture's, the leader stacks', and the files that prove their own calls) recorded
 * what it offered and what the simulator said allowed each request (test/support/iam-usage.ts); this
 * file runs after them (sorted last but the history scan, test/support/sequencer.js, and waits for them)
 * and judges the records together. It judges the scenarios of the run it is in: run alone or with a few
 * files, it names what those did not use.
 */
import { usageDir, readUsage, unusedStatements } from '../support/iam-usage';
import { waitForOtherFiles } from '../support/finished-files';

jest.setTimeout(35 * 60_000);

test('every statement of the generated policies, and every action in it, allowed a call of the scenarios', async () => {
  await waitForOtherFiles(__filename, 30 * 60_000, ['history-scan.test.ts']);
  const dir = usageDir();
  expect(dir).toBeDefined();
  const records = readUsage(dir as string);
  // Never judged on nothing: at least one proof ran in this run.
  expect(records.length).toBeGreaterThan(0);
  const files = [...new Set(records.map((r) => r.file))].sort();
  const statements = new Set(records.flatMap((r) => Object.keys(r.offered)));
  process.stdout.write(`IAM statements used: ${records.length} proofs in ${files.length} files (${files.join(', ')}), ${statements.size} distinct statements offered\n`);
  expect(unusedStatements(records)).toEqual([]);
});
