/**
 * `nstance iam policy --resolve-roles`: each instance profile the args launch with is asked of IAM
 * (iam:GetInstanceProfile), and iam:PassRole names the roles IAM answers, not roles of the profiles'
 * names. An IAM client stands in here, answering as IAM does (NoSuchEntity for a profile it does not
 * know); test/integration/iam-resolve-roles.test.ts runs the CLI on moto's IAM.
 */
import type { IAMClient } from '@aws-sdk/client-iam';
import { resolveProfileRoles } from '../../client/cli/iam';
import { parseConfigText } from '../../common/config';
import { workerPolicy } from '../../common/iam/policy';
import { exampleWith, setPath } from './config/example';

const ACCOUNT = '123456789012';
/** The example launches with instance-profile/nstance-agent (defaults.args); the web template adds another, by name. */
const config = parseConfigText(exampleWith((c) => setPath(c, 'templates.web.args.IamInstanceProfile', { Name: 'web-profile' })), 'config.jsonc');

/** IAM as far as GetInstanceProfile goes: `profiles` maps a profile name to its roles' ARNs. */
function iamWith(profiles: Record<string, string[]>): Pick<IAMClient, 'send'> & { asked: string[] } {
  const asked: string[] = [];
  const send = async (command: { input: { InstanceProfileName?: string } }) => {
    const name = command.input.InstanceProfileName ?? '';
    asked.push(name);
    const roles = profiles[name];
    if (!roles) throw Object.assign(new Error(`Instance Profile ${name} cannot be found.`), { name: 'NoSuchEntity' });
    return { InstanceProfile: { InstanceProfileName: name, Roles: roles.map((Arn) => ({ Arn, RoleName: Arn.split('/').pop() })) } };
  };
  return { send: send as unknown as Pick<IAMClient, 'send'>['send'], asked };
}

const passRole = (roles: Record<string, string[]>) => workerPolicy(config, { account: ACCOUNT, instanceProfileRoles: roles }).Statement.find((s) => s.Sid === 'PassInstanceProfileRoles');

describe('--resolve-roles', () => {
  it("asks IAM for each profile and scopes iam:PassRole to the roles it answers, not the profiles' names", async () => {
    const iam = iamWith({ 'nstance-agent': [`arn:aws:iam::${ACCOUNT}:role/agents/nstance-agent-role`], 'web-profile': [`arn:aws:iam::${ACCOUNT}:role/web-instances`] });
    const roles = await resolveProfileRoles(config, iam);
    expect(iam.asked.sort()).toEqual(['nstance-agent', 'web-profile']);
    expect(roles).toEqual({
      [`arn:aws:iam::${ACCOUNT}:instance-profile/nstance-agent`]: [`arn:aws:iam::${ACCOUNT}:role/agents/nstance-agent-role`],
      'web-profile': [`arn:aws:iam::${ACCOUNT}:role/web-instances`],
    });
    expect(passRole(roles)?.Resource).toEqual([`arn:aws:iam::${ACCOUNT}:role/agents/nstance-agent-role`, `arn:aws:iam::${ACCOUNT}:role/web-instances`]);
    // Without it, the roles are assumed to share the profiles' names.
    expect(passRole({} as Record<string, string[]>)?.Resource).toEqual([`arn:aws:iam::${ACCOUNT}:role/nstance-agent`, `arn:aws:iam::${ACCOUNT}:role/web-profile`]);
  });

  it('names a profile IAM does not know, and where the config uses it', async () => {
    const iam = iamWith({ 'nstance-agent': [`arn:aws:iam::${ACCOUNT}:role/nstance-agent`] });
    await expect(resolveProfileRoles(config, iam)).rejects.toThrow(/^--resolve-roles: no instance profile "web-profile" in the account \(IamInstanceProfile web-profile in args\)$/);
  });

  it('refuses a profile without a role (a launch with it would pass none)', async () => {
    const iam = iamWith({ 'nstance-agent': [`arn:aws:iam::${ACCOUNT}:role/nstance-agent`], 'web-profile': [] });
    await expect(resolveProfileRoles(config, iam)).rejects.toThrow(/--resolve-roles: instance profile "web-profile" has no role/);
  });
});
