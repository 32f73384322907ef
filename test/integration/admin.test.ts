/**
 * Nstance's admin surface through the real CLI: `plan` against each kind of change (exit 0 / 2 / 1),
 * `group create|delete|list|status`, `config status|refresh`, and the instance records in S3 that
 * appear as instances change and are removed after the retention once their instance is gone.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { groupWorkflowId } from '../../common/names';
import type { InstanceRecord } from '../../common/types';
import { groupStatus, waitForConvergence } from '../../client/ops/status';
import { runCli } from '../support/cli';
import { configText } from '../support/fixtures';
import { eventually, listKeys, readJson } from '../support/emulator';
import { useShard, type ShardConfigOptions } from '../support/shard-fixture';

// GC every 2 s, and records of ended instances kept 1 s, so their removal is seen here.
const SETTINGS = { garbage_collection: { interval: '2s', registration_timeout: '60s', deleted_record_retention: '1s' } };
const BASE: ShardConfigOptions = { size: 1, reconcileInterval: '2s', shardSettings: SETTINGS, web: { load_balancers: ['web'], drain_timeout: '2s' } };
const fx = useShard('adm', { worker: true, registrar: true, config: BASE });
const { ref, shard } = fx;
const dir = mkdtempSync(join(tmpdir(), 'nstance-admin-'));
const common = () => ['--shard', shard, '--bucket', fx.bucket];

function file(config: Record<string, unknown>): string {
  const path = join(dir, `c-${Math.random().toString(36).slice(2)}.jsonc`);
  writeFileSync(path, configText(config));
  return path;
}
const planOf = async (config: Record<string, unknown>) => {
  const r = await runCli('plan', '-f', file(config), '--bucket', fx.bucket, '--json');
  return { code: r.code, stderr: r.stderr, plan: r.code === 1 ? undefined : JSON.parse(r.stdout) };
};
const recordKeys = () => listKeys(fx.aws.s3, fx.bucket, `shard/${shard}/instance/`);

test('plan: each kind of change, with its exit code', async () => {
  await waitForConvergence(fx.client, ref, { timeoutMs: 120_000, size: 1 });
  const same = await planOf(fx.config(BASE));
  expect([same.code, same.plan.changed]).toEqual([0, false]);

  const resized = await planOf(fx.config({ ...BASE, size: 2 }));
  expect(resized.code).toBe(2);
  expect(resized.plan.groups.resized).toEqual([{ group: 'default/web', from: 1, to: 2 }]);
  expect(resized.plan.groups.rotating).toEqual([]);

  const added = await planOf(fx.config({ ...BASE, groups: { ops: { api: { template: 'web', size: 2 } } } }));
  expect(added.code).toBe(2);
  expect(added.plan.groups.added).toEqual([{ group: 'ops/api', size: 2 }]);

  const removed = fx.config(BASE) as { groups: Record<string, unknown> };
  removed.groups = {};
  const gone = await planOf(removed);
  expect(gone.code).toBe(2);
  expect(gone.plan.groups.removed).toEqual([{ group: 'default/web', size: 1 }]);

  const noLb = await planOf(fx.config({ ...BASE, web: { drain_timeout: '2s' } }));
  expect(noLb.code).toBe(2);
  expect(noLb.plan.loadBalancers.groups).toEqual([{ group: 'default/web', added: [], removed: [`${fx.seed.targetGroupArn}:443`] }]);
  expect(noLb.plan.iam.added).toEqual([]);

  const rotated = await planOf(fx.config({ ...BASE, web: { ...BASE.web, args: { EbsOptimized: true } } }));
  expect(rotated.code).toBe(2);
  expect(rotated.plan.groups.rotating).toEqual([{ group: 'default/web', fields: ['args'], members: 1, counted: true }]);

  const text = await runCli('plan', '-f', file(fx.config({ ...BASE, size: 2 })), '--bucket', fx.bucket);
  expect(text.code).toBe(2);
  expect(text.stdout).toContain('~ group default/web: size 1 -> 2');

  const invalid = await planOf({ ...fx.config(BASE), shard: { ...(fx.config(BASE).shard as object), id: 'bad--id' } });
  expect(invalid.code).toBe(1);
  expect(invalid.stderr).toContain('shard.id');
});

test('group create, list, status, delete; config status and refresh; all with --json', async () => {
  const created = await runCli('group', 'create', 'default/batch', '--template', 'web', '--size', '1', '--var', 'Environment=batch', ...common(), '--json');
  expect(created.stderr).toBe('');
  expect(created.code).toBe(0);
  expect(JSON.parse(created.stdout)).toMatchObject({ tenant: 'default', group: 'batch', kind: 'dynamic', size: 1, template: 'web', vars: { Environment: 'batch' } });

  const refused = await runCli('group', 'create', 'default/web', '--template', 'web', ...common());
  expect(refused.code).toBe(1);
  expect(refused.stderr).toContain('an override may change only size, instance_type, vars');

  const override = await runCli('group', 'create', 'default/web', '--var', 'Environment=override', ...common(), '--json');
  expect(override.code).toBe(0);
  expect(JSON.parse(override.stdout)).toMatchObject({ kind: 'override', size: 1, vars: { Environment: 'override' } });

  const list = await runCli('group', 'list', ...common(), '--json');
  expect(list.code).toBe(0);
  expect(JSON.parse(list.stdout)).toEqual([
    { shard, tenant: 'default', group: 'batch', size: 1, template: 'web', instanceType: 'm7g.large', subnetPool: 'private', static: false, overrides: [] },
    { shard, tenant: 'default', group: 'web', size: 1, template: 'web', instanceType: 'm7g.large', subnetPool: 'private', static: true, overrides: ['vars'] },
  ]);

  const batchRef = { shard, tenant: 'default', group: 'batch' };
  await eventually('default/batch has a member running', async () => {
    const s = await groupStatus(fx.client, batchRef).catch(() => undefined);
    return s && s.members.some((m) => m.phase === 'running') ? s : undefined;
  }, 90_000);
  const status = await runCli('group', 'status', 'default/batch', ...common(), '--json');
  expect(status.code).toBe(0);
  expect(JSON.parse(status.stdout)).toMatchObject({ group: 'batch', static: false, vars: { Environment: 'batch' }, live: { desired: 1, total: 1, drifted: 0 } });
  const human = await runCli('group', 'status', 'default/web', ...common());
  expect(human.stdout).toContain('overridden: vars');
  expect(human.stdout).toContain('Environment=override');

  const cs = await runCli('config', 'status', ...common(), '--json');
  expect(cs.code).toBe(0);
  const configStatus = JSON.parse(cs.stdout);
  expect(configStatus.groups).toEqual([
    { group: 'default/batch', size: 1, running: true, desired: 1 },
    { group: 'default/web', size: 1, running: true, desired: 1 },
  ]);
  expect(configStatus.groupsFile.etag).toEqual(expect.any(String));
  const refreshed = await runCli('config', 'refresh', ...common(), '--json');
  expect(JSON.parse(refreshed.stdout)).toEqual({ shard, signalled: ['default/batch', 'default/web'], leaving: [] });

  const unoverride = await runCli('group', 'delete', 'default/web', ...common(), '--json');
  expect(JSON.parse(unoverride.stdout)).toMatchObject({ kind: 'override' });
  const deleted = await runCli('group', 'delete', 'default/batch', ...common(), '--wait', '--timeout', '90s');
  expect(deleted.stderr).toBe('');
  expect(deleted.code).toBe(0);
  const ended = await fx.client.workflow.getHandle(groupWorkflowId(shard, 'default', 'batch')).describe();
  expect(ended.status.name).toBe('COMPLETED');
  const again = await runCli('group', 'delete', 'default/web', ...common());
  expect(again.code).toBe(1);
  expect(again.stderr).toContain('defined in config.jsonc and has no override');
});

test('instance records appear in S3 as instances change, and are removed after the retention once gone', async () => {
  const web = await eventually('default/web in service', async () => {
    const s = await groupStatus(fx.client, ref);
    return s.inService === 1 && s.total === 1 ? s : undefined;
  }, 90_000);
  const [member] = web.members;
  const key = `shard/${shard}/instance/default.${member.instanceId}.json`;
  const record = await eventually('its record says in service', async () => {
    const r = await readJson<InstanceRecord>(fx.aws.s3, fx.bucket, key).catch(() => undefined);
    return r?.phase === 'in-service' ? r : undefined;
  }, 30_000);
  expect(record).toMatchObject({ shard, tenant: 'default', group: 'web', id: member.instanceId, ec2InstanceId: member.ec2InstanceId, privateIp: expect.any(String) });

  // Replacing it: the old record says terminated, then goes once past the retention; the new one stays.
  const replaced = await runCli('instance', 'replace', member.instanceId, '--shard', shard);
  expect(replaced.code).toBe(0);
  const fresh = await eventually('a new member in service and the old one gone', async () => {
    const s = await groupStatus(fx.client, ref);
    const m = s.members.find((x) => x.instanceId !== member.instanceId && x.phase === 'in-service');
    return m && s.total === 1 ? m : undefined;
  }, 120_000);
  await eventually('the old record removed, the new one kept', async () => {
    const keys = await recordKeys();
    return !keys.includes(key) && keys.includes(`shard/${shard}/instance/default.${fresh.instanceId}.json`) ? keys : undefined;
  }, 60_000);
});
