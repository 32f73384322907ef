import { validateConfigValue, type NstanceConfig } from '../../common/config';
import { launchFingerprint } from '../../common/launch-fingerprint';
import type { GroupStatus, Member } from '../../common/types';
import { buildGroupSpec } from '../../activities/group-spec';
import { resolveGroups, shardSettings } from '../../common/config';
import { iamActionsFor, newIamActions } from '../../client/ops/iam-actions';
import { computePlan } from '../../client/ops/plan-diff';
import { confirmPlan, renderPlan } from '../../client/cli/plan';
import { exampleData, setPath } from './config/example';

type Node = Record<string, unknown>;
const config = (...edits: ((c: Node) => void)[]): NstanceConfig => {
  const data = exampleData();
  for (const edit of edits) edit(data);
  return validateConfigValue(data, 'test.jsonc');
};
const empty = { groups: {} };
const plan = (before: NstanceConfig | undefined, after: NstanceConfig, running?: Map<string, GroupStatus>) =>
  computePlan({ previous: before ? { config: before, dynamic: empty } : undefined, next: after, running, newIamActions });

describe('plan: what config apply would change', () => {
  test('the same config changes nothing', () => {
    const p = plan(config(), config());
    expect(p.changed).toBe(false);
    expect(renderPlan({ ...p, bucket: 'b' })).toContain('no changes');
  });

  test('a first apply adds every group and needs every IAM action', () => {
    const p = plan(undefined, config());
    expect(p.changed).toBe(true);
    expect(p.groups.added).toEqual([{ group: 'default/web', size: 3 }]);
    expect(p.iam.added).toEqual(iamActionsFor(config()));
  });

  test('groups added, removed and resized', () => {
    const before = config();
    const after = config(
      (c) => setPath(c, 'groups.default.web.size', 5),
      (c) => setPath(c, 'groups.other.api', { template: 'web', size: 2 }),
    );
    const p = plan(before, after);
    expect(p.groups.resized).toEqual([{ group: 'default/web', from: 3, to: 5 }]);
    expect(p.groups.added).toEqual([{ group: 'other/api', size: 2 }]);
    expect(p.groups.rotating).toEqual([]);
    expect(plan(after, before).groups.removed).toEqual([{ group: 'other/api', size: 2 }]);
  });

  test('a changed instance type rotates the group, naming the field; vars alone rotate nothing', () => {
    const before = config();
    const p = plan(before, config((c) => setPath(c, 'groups.default.web.instance_type', 'm7g.xlarge')));
    expect(p.groups.rotating).toEqual([{ group: 'default/web', fields: ['instance_type'], members: 3, counted: false }]);
    const vars = plan(before, config((c) => setPath(c, 'groups.default.web.vars', { Env: 'staging' })));
    expect(vars.changed).toBe(true);
    expect(vars.groups.rotating).toEqual([]);
    expect(vars.groups.pushed).toEqual([{ group: 'default/web', fields: ['vars'] }]);
  });

  test('members that would rotate are counted by the group decision on their launch versions', () => {
    const before = config();
    const after = config((c) => setPath(c, 'groups.default.web.instance_type', 'm7g.xlarge'));
    const spec = (cfg: NstanceConfig) => {
      const r = buildGroupSpec(cfg, resolveGroups(cfg)[0], shardSettings(cfg));
      if (!r.found) throw new Error('no spec');
      return r.spec;
    };
    const old = { id: 1, fields: launchFingerprint(spec(before).launch).fields, images: { al2023: 'ami-1' } };
    const already = { id: 2, fields: launchFingerprint(spec(after).launch).fields, images: { al2023: 'ami-1' } };
    const members: Member[] = [
      { instanceId: 'web-1', seq: 1, phase: 'in-service', launch: 1 },
      { instanceId: 'web-2', seq: 2, phase: 'in-service', launch: 2 },
      { instanceId: 'web-3', seq: 3, phase: 'in-service' },
      { instanceId: 'web-4', seq: 4, phase: 'draining', leaving: true, launch: 1 },
    ];
    const status = { shard: 'x', tenant: 'default', group: 'web', members, launches: [old, already] } as unknown as GroupStatus;
    const p = plan(before, after, new Map([['default/web', status]]));
    // web-1 (old launch) only: not web-2 (launched from the new spec already), nor the leaving one, nor web-3 (no
    // version: launched before drift rotation existed, which the group stamps as current and never rotates).
    expect(p.groups.rotating).toEqual([{ group: 'default/web', fields: ['instance_type'], members: 1, counted: true }]);
  });

  test.each([
    ['args', (c: Node) => setPath(c, 'groups.default.web.args', { EbsOptimized: true })],
    ['subnet_pool', (c: Node) => { setPath(c, 'shard.subnet_pools.other', ['subnet-0ccc']); setPath(c, 'groups.default.web.subnet_pool', 'other'); }],
  ])('a change to %s rotates, naming it', (field, edit) => {
    expect(plan(config(), config(edit)).groups.rotating.map((r) => r.fields)).toEqual([[field]]);
  });

  test('the order of keys is no change: vars and load balancers compared canonically', () => {
    const vars = (order: string[]) => (c: Node) => setPath(c, 'groups.default.web.vars', Object.fromEntries(order.map((k) => [k, `v-${k}`])));
    const p = plan(config(vars(['a', 'b'])), config(vars(['b', 'a'])));
    expect(p.groups.pushed).toEqual([]);
    expect(p.changed).toBe(false);
  });

  test('settings that change nothing running are listed, not rotated', () => {
    const p = plan(config(), config((c) => setPath(c, 'groups.default.web.drain_timeout', '3m'), (c) => setPath(c, 'groups.default.web.max_surge', 2)));
    expect(p.groups.rotating).toEqual([]);
    expect(p.groups.settings).toEqual([{ group: 'default/web', fields: ['drain_timeout', 'max_surge'] }]);
  });

  test('load balancer changes: definitions and the target groups a group joins or leaves', () => {
    const arn = 'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/api/00000000000000aa';
    const p = plan(
      config(),
      config(
        (c) => setPath(c, 'load_balancers.api', { target_groups: [{ arn, target_port: 8080 }] }),
        (c) => setPath(c, 'groups.default.web.load_balancers', ['api']),
      ),
    );
    expect(p.loadBalancers.added).toEqual(['api']);
    expect(p.loadBalancers.groups).toEqual([
      { group: 'default/web', added: [`${arn}:8080`], removed: ['arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef:443'] },
    ]);
    expect(p.groups.rotating).toEqual([]);
    const text = renderPlan({ ...p, bucket: 'b' });
    expect(text).toContain('+ load balancer api');
    expect(text).toContain(`joins target group ${arn}:8080`);
  });

  test('IAM actions newly needed, through the seam', () => {
    // A new load balancer: the actions were allowed already, now also on its target group (the generated policy's scope).
    const arn = 'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/api/00000000000000aa';
    const after = config((c) => setPath(c, 'load_balancers.api', { target_groups: [{ arn, target_port: 8080 }] }));
    expect(plan(config(), after).iam.added).toEqual(['elasticloadbalancing:DeregisterTargets', 'elasticloadbalancing:RegisterTargets'].map((a) => `${a} on ${arn}`));
    expect(plan(config(), config()).iam.added).toEqual([]);
    const seam = jest.fn(() => ['ec2:Example']);
    const p = computePlan({ previous: { config: config(), dynamic: empty }, next: config(), newIamActions: seam });
    expect(seam).toHaveBeenCalledTimes(1);
    expect(p.iam.added).toEqual(['ec2:Example']);
    expect(p.changed).toBe(true);
  });

  test('a size set by group scale that the config now changes is listed as replaced', () => {
    const p = computePlan({
      previous: { config: config(), dynamic: { groups: { default: { web: { size: 7 } } } } },
      next: config((c) => setPath(c, 'groups.default.web.size', 4)),
      newIamActions,
    });
    expect(p.droppedOverrides).toEqual(['default/web']);
    expect(p.groups.resized).toEqual([{ group: 'default/web', from: 7, to: 4 }]);
  });
});

describe('config apply asks on a terminal', () => {
  const { PassThrough } = jest.requireActual<typeof import('node:stream')>('node:stream');
  const io = (answer: string, tty: boolean) => {
    const stdin = Object.assign(new PassThrough(), { isTTY: tty });
    const stdout = Object.assign(new PassThrough(), { isTTY: tty });
    let shown = '';
    stdout.on('data', (d: Buffer) => (shown += d.toString()));
    setTimeout(() => stdin.write(`${answer}\n`), 10);
    return { io: { stdin, stdout } as unknown as { stdin: NodeJS.ReadStream; stdout: NodeJS.WriteStream }, shown: () => shown };
  };
  const changed = { ...plan(config(), config((c) => setPath(c, 'groups.default.web.size', 5))), bucket: 'b' };

  test('declining applies nothing; yes applies; --yes and a non-terminal do not ask', async () => {
    const no = io('n', true);
    await expect(confirmPlan(changed, {}, no.io)).rejects.toThrow('apply cancelled: nothing was written');
    expect(no.shown()).toContain('size 3 -> 5');
    expect(no.shown()).toContain('apply these changes? [y/N]');
    await expect(confirmPlan(changed, {}, io('yes', true).io)).resolves.toBeUndefined();
    const skipped = io('n', true);
    await expect(confirmPlan(changed, { yes: true }, skipped.io)).resolves.toBeUndefined();
    expect(skipped.shown()).not.toContain('apply these changes');
    await expect(confirmPlan(changed, {}, io('n', false).io)).resolves.toBeUndefined();
  });
});
