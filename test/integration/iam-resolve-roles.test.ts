/**
 * `nstance iam policy --resolve-roles` on moto's IAM: the CLI asks iam:GetInstanceProfile for each profile
 * the args launch with, and iam:PassRole names the role IAM answers (here one whose name and path differ
 * from the profile's, so the name convention would have got it wrong); a profile IAM does not know is an
 * error naming it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AddRoleToInstanceProfileCommand, CreateInstanceProfileCommand, CreateRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { workerTrustPolicy } from '../../common/iam/documents';
import { MOTO_ACCOUNT } from '../support/faults';
import { runCli } from '../support/cli';
import { stackEnv } from '../support/stack-env';

const run = Date.now().toString(36);
const env = stackEnv();
const profile = `rr-profile-${run}`;
const role = `rr-instances-${run}`;

/** A config launching with `iamInstanceProfile` (defaults.args), written to a file of its own. */
function configFile(name: string, iamInstanceProfile: Record<string, string>): string {
  const file = path.join(os.tmpdir(), `${name}-${run}.jsonc`);
  const config = {
    cluster: { id: 'rr', storage: { provider: 's3', bucket: `nstance-rr-${run}` }, secrets: { provider: 'aws-secrets-manager' } },
    shard: { id: `rr-${run}`, infra: { provider: 'aws', region: env.region, zone: `${env.region}a` }, subnet_pools: { private: ['subnet-0aaa'] } },
    defaults: { args: { IamInstanceProfile: iamInstanceProfile } },
  };
  fs.writeFileSync(file, JSON.stringify(config));
  return file;
}

const files: string[] = [];
beforeAll(async () => {
  const iam = new IAMClient({ region: env.region, endpoint: env.awsEndpoint });
  try {
    await iam.send(new CreateRoleCommand({ RoleName: role, Path: '/fleet/', AssumeRolePolicyDocument: JSON.stringify(workerTrustPolicy()) }));
    await iam.send(new CreateInstanceProfileCommand({ InstanceProfileName: profile }));
    await iam.send(new AddRoleToInstanceProfileCommand({ InstanceProfileName: profile, RoleName: role }));
  } finally {
    iam.destroy();
  }
});
afterAll(() => {
  for (const f of files) fs.rmSync(f, { force: true });
});

test("iam:PassRole names the role IAM answers for the profile, path and all, not a role of the profile's name", async () => {
  const file = configFile('rr-known', { Arn: `arn:aws:iam::${MOTO_ACCOUNT}:instance-profile/${profile}` });
  files.push(file);
  const out = await runCli('iam', 'policy', '-f', file, '--json', '--resolve-roles', '--account', MOTO_ACCOUNT);
  expect(out.stderr).toBe('');
  expect(out.code).toBe(0);
  const report = JSON.parse(out.stdout) as { workerPolicy: { Statement: { Sid: string; Resource: string[] }[] }; notes: string[] };
  expect(report.workerPolicy.Statement.find((s) => s.Sid === 'PassInstanceProfileRoles')?.Resource).toEqual([`arn:aws:iam::${MOTO_ACCOUNT}:role/fleet/${role}`]);
  // Resolved: no note that the roles are assumed to share the profiles' names.
  expect(report.notes.join('\n')).not.toMatch(/iam:PassRole assumes/);
});

test('a profile IAM does not know is refused, naming it; nothing is printed', async () => {
  const file = configFile('rr-unknown', { Name: `rr-absent-${run}` });
  files.push(file);
  const out = await runCli('iam', 'policy', '-f', file, '--resolve-roles');
  expect(out.code).toBe(1);
  expect(out.stdout).toBe('');
  expect(out.stderr).toMatch(new RegExp(`--resolve-roles: no instance profile "rr-absent-${run}" in the account`));
});
