/** `nstance iam policy`'s --account and --operator: checked before anything is printed, each error naming the flag. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli } from '../support/cli';
import { exampleWith, setPath } from './config/example';

const ROLE = 'arn:aws:iam::210987654321:role/nstance-fleet';
const file = path.join(os.tmpdir(), `iam-flags-${process.pid}.jsonc`);
beforeAll(() => fs.writeFileSync(file, exampleWith((c) => setPath(c, 'shard.infra.assume_role', { role_arn: ROLE, external_id: 'tenant-42' }))));
afterAll(() => fs.rmSync(file, { force: true }));

describe('refused, naming the flag and what it expects', () => {
  it.each([
    ['--account that is not 12 digits', ['--account', '12345'], /^nstance: --account "12345": expected a 12-digit AWS account id/],
    ['--account with letters', ['--account', '12345678901a'], /^nstance: --account "12345678901a": expected a 12-digit/],
    ['--operator without --cross-account', ['--operator', 'arn:aws:iam::111111111111:role/nstance-worker'], /^nstance: --operator names who assumes shard\.infra\.assume_role: it needs --cross-account/],
    ['--operator that is a bare name', ['--cross-account', '--operator', 'nstance-worker'], /^nstance: --operator "nstance-worker": expected the identity that assumes the role, an IAM role, user or account ARN/],
    ['--operator that is not an IAM principal', ['--cross-account', '--operator', 'arn:aws:s3:::bucket'], /^nstance: --operator "arn:aws:s3:::bucket": expected/],
  ])('%s', async (_what, flags, says) => {
    const out = await runCli('iam', 'policy', '-f', file, ...flags);
    expect(out.code).toBe(1);
    expect(out.stdout).toBe('');
    expect(out.stderr).toMatch(says);
  });
});

describe('accepted and used', () => {
  it('--account: every ARN of the policy is in that account', async () => {
    const out = await runCli('iam', 'policy', '-f', file, '--json', '--account', '333333333333');
    expect(out.code).toBe(0);
    const report = JSON.parse(out.stdout) as { account: string; workerPolicy: { Statement: { Resource: string[] }[] } };
    expect(report.account).toBe('333333333333');
    const accounts = new Set(report.workerPolicy.Statement.flatMap((s) => s.Resource).filter((r) => /^arn:aws:(ec2|secretsmanager|iam):/.test(r)).map((r) => r.split(':')[4]));
    // EC2 image ARNs name no account; the target group's ARN is the config's own.
    expect([...accounts].filter((a) => a !== '')).toEqual(['333333333333']);
  });

  it.each([
    ['a role ARN', 'arn:aws:iam::111111111111:role/nstance-worker'],
    ['a role ARN with a path', 'arn:aws:iam::111111111111:role/platform/nstance-worker'],
    ['an account id', '111111111111'],
    ["an account's root", 'arn:aws:iam::111111111111:root'],
  ])('--operator as %s is the principal the role trusts', async (_what, operator) => {
    const out = await runCli('iam', 'policy', '-f', file, '--json', '--cross-account', '--operator', operator);
    expect(out.code).toBe(0);
    const report = JSON.parse(out.stdout) as { crossAccount: { roleTrustPolicy: { Statement: { Principal: unknown }[] } } };
    expect(report.crossAccount.roleTrustPolicy.Statement[0]?.Principal).toEqual({ AWS: operator });
  });
});
