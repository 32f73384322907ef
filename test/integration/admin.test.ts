/**
 * Nstance's admin surface through the real CLI: `plan` against each kind of change (exit 0 / 2 / 1),
 * `group create|delete|list|status`, `config status|refresh`, and the instance records in S3 that
 * appear as instances change and are removed after the retention once their instance is gone.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { MockActivityEnvironment } from '@temporalio/testing';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { gcWorkflowId, groupWorkflowId, s3Keys } from '../../common/names';
import type { InstanceRecord } from '../../common/types';
import { groupStatus, waitForConvergence } from '../../client/ops/status';
import { runCli } from '../support/cli';
import { expectLinkToRunOf } from '../support/ui-link';
import { configText } from '../support/fixtures';
import { eventually, listKeys, readJson } from '../support/emulator';
import { awsError } from '../support/faults';
import { createInstanceRecordActivities } from '../../activities/instance-record-activities';
import type { RecordWriteProgress } from '../../adapters/s3/instance-records';
import { useShard, type ShardConfigOptions } from '../support/shard-fixture';
import { STACK_UI_VAR } from '../support/global-setup';

// GC every 2 s, and records of ended instances kept 1 s, so their removal is seen here.
const SETTINGS = { garbage_collection: { interval: '2s', registration_timeout: '60s', deleted_record_retention: '1s' } };
const BASE: ShardConfigOptions = { size: 1, reconcileInterval: '2s', shardSettings: SETTINGS, web: { load_balancers: ['web'], drain_timeout: '2s' } };
const fx = useShard('adm', { worker: true, registrar: true, config: BASE });
const { ref, shard } = fx;
const dir = mkdtempSync(join(tmpdir(), 'nstance-admin-'));
const common = () => ['--shard', shard, '--bucket', fx.bucket];
const ui = process.env[STACK_UI_VAR] ?? 'http://127.0.0.1:8233';
/** The Web UI link of a workflow's current run, as the CLI prints it. */
const linkOf = async (workflowId: string) => {
  const { runId } = await fx.client.workflow.getHandle(workflowId).describe();
  return `Web UI: ${ui}/namespaces/default/workflows/${encodeURIComponent(workflowId)}/${runId}/history`;
};

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

test('group create, list, status, delete; config status and refresh; all with --json, each printing the Web UI link of the runs it starts or signals', async () => {
  const created = await runCli('group', 'create', 'default/batch', '--template', 'web', '--size', '1', '--var', 'Environment=batch', ...common(), '--json');
  expect(created.stderr).toBe('');
  expect(created.code).toBe(0);
  const batchRun = (await fx.client.workflow.getHandle(groupWorkflowId(shard, 'default', 'batch')).describe()).runId;
  expect(JSON.parse(created.stdout)).toMatchObject({
    tenant: 'default',
    group: 'batch',
    kind: 'dynamic',
    size: 1,
    template: 'web',
    vars: { Environment: 'batch' },
    runs: [{ workflowId: groupWorkflowId(shard, 'default', 'batch'), runId: batchRun }],
  });

  const refused = await runCli('group', 'create', 'default/web', '--template', 'web', ...common());
  expect(refused.code).toBe(1);
  expect(refused.stderr).toContain('an override may change only size, instance_type, vars');

  const override = await runCli('group', 'create', 'default/web', '--var', 'Environment=override', ...common(), '--ui-url', ui);
  expect(override.code).toBe(0);
  expect(override.stdout).toContain('default/web: override of the config.jsonc group stored (size 1');
  expect(override.stdout).toContain(await linkOf(groupWorkflowId(shard, 'default', 'web')));
  expect(JSON.parse((await runCli('group', 'status', 'default/web', ...common(), '--json')).stdout)).toMatchObject({ overrides: ['vars'], vars: { Environment: 'override' } });

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
  const refreshedJson = JSON.parse(refreshed.stdout);
  expect(refreshedJson).toMatchObject({ shard, signalled: ['default/batch', 'default/web'], leaving: [] });
  expect(refreshedJson.runs.map((r: { workflowId: string }) => r.workflowId)).toEqual([groupWorkflowId(shard, 'default', 'batch'), groupWorkflowId(shard, 'default', 'web'), gcWorkflowId(shard)]);
  const refreshedText = await runCli('config', 'refresh', ...common(), '--ui-url', ui);
  expect(refreshedText.stdout).toContain('refreshed 2 group(s)');
  for (const id of [groupWorkflowId(shard, 'default', 'batch'), groupWorkflowId(shard, 'default', 'web'), gcWorkflowId(shard)]) expect(refreshedText.stdout).toContain(await linkOf(id));

  const unoverride = await runCli('group', 'delete', 'default/web', ...common(), '--json');
  expect(JSON.parse(unoverride.stdout)).toMatchObject({ kind: 'override', runs: [{ workflowId: groupWorkflowId(shard, 'default', 'web'), runId: expect.any(String) }] });
  const batchLink = await linkOf(groupWorkflowId(shard, 'default', 'batch'));
  const deleted = await runCli('group', 'delete', 'default/batch', ...common(), '--wait', '--timeout', '90s', '--ui-url', ui);
  expect(deleted.stderr).toBe('');
  expect(deleted.code).toBe(0);
  expect(deleted.stdout).toContain(`default/batch: deleted (its instances drain)\n${batchLink}`);
  // Off a terminal, the wait prints a progress line per change: the member still there (0 of 1 gone), or gone.
  expect(deleted.stdout.split('\n').filter((l) => l.startsWith('default/batch deleting: '))[0]).toMatch(/^default\/batch deleting: [01]\/1 · desired [01], running [01] \(in service [01]\), pending [01], draining [01]$/);
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

  // The certificate files a leader kept for it (workers/agent-api/certificate-file-records.ts) go with its record.
  const keptFiles = s3Keys.certificateFiles(shard, member.instanceId);
  await fx.aws.s3.send(new PutObjectCommand({ Bucket: fx.bucket, Key: keptFiles, Body: '{"version":1,"files":{}}' }));

  // Replacing it: the old record says terminated, then goes once past the retention; the new one stays.
  const replaced = await runCli('instance', 'replace', member.instanceId, '--shard', shard, '--ui-url', ui);
  expect(replaced.code).toBe(0);
  expect(replaced.stdout).toContain(`${member.instanceId} (default/web): replace requested\nWeb UI: ${ui}/`);
  await expectLinkToRunOf(fx.client, replaced.stdout, groupWorkflowId(shard, 'default', 'web'));
  const fresh = await eventually('a new member in service and the old one gone', async () => {
    const s = await groupStatus(fx.client, ref);
    const m = s.members.find((x) => x.instanceId !== member.instanceId && x.phase === 'in-service');
    return m && s.total === 1 ? m : undefined;
  }, 120_000);
  await eventually('the old record removed, the new one kept', async () => {
    const keys = await recordKeys();
    return !keys.includes(key) && keys.includes(`shard/${shard}/instance/default.${fresh.instanceId}.json`) ? keys : undefined;
  }, 60_000);
  expect(await listKeys(fx.aws.s3, fx.bucket, `shard/${shard}/certificate-files/`)).not.toContain(keptFiles);
});

test('a batch of records heartbeats its progress every page, and its retry writes only what is left', async () => {
  // 1,000 records of a tenant no group has (the collector removes them after the retention).
  const batch: InstanceRecord[] = Array.from({ length: 1000 }, (_, i) => ({ shard, tenant: 'hb', group: 'load', id: `hb-${String(i).padStart(12, '0')}`, phase: 'running', updatedAt: new Date().toISOString() }));
  const isBatchPut = (command: string, input: Record<string, unknown>) => command === 'PutObject' && String(input.Key).includes(`/instance/hb.`);
  const puts = () => fx.faults.calls.filter((c) => isBatchPut(c.command, c.input) && c.outcome === 'ok').length;
  const { writeInstanceRecords } = createInstanceRecordActivities({ aws: fx.aws, bucket: fx.bucket, temporal: fx.client });

  // The first attempt dies part-way: S3 refuses a write past the 450th (writes finish out of order, 16 at a time).
  let allowed = 450;
  fx.faults.failBefore((command, input) => isBatchPut(command, input) && allowed-- <= 0, () => awsError('InternalError', 'injected: S3 failed mid-batch', 'server'), 1);
  const first = new MockActivityEnvironment({ attempt: 1 });
  const beats: RecordWriteProgress[] = [];
  first.on('heartbeat', (d: RecordWriteProgress) => beats.push(d));
  await expect(first.run(writeInstanceRecords, batch)).rejects.toThrow(/injected: S3 failed mid-batch/);
  // The other writers stopped with it: a few in flight finished, nothing more.
  await new Promise((r) => setTimeout(r, 1000));
  const written = puts();
  expect(written).toBeGreaterThanOrEqual(450);
  expect(written).toBeLessThan(450 + 32);
  // A heartbeat at least every 100 records written in order (writes finish out of order, 16 at a time, so a
  // page may be reported up to 15 late), each naming the last of them.
  const at = beats.map((b) => b.written);
  expect(at.length).toBeGreaterThanOrEqual(3);
  for (let i = 0; i < at.length; i++) expect(at[i] - (i === 0 ? 0 : at[i - 1])).toBeLessThanOrEqual(100 + 15);
  expect(at[at.length - 1]).toBeGreaterThanOrEqual(300);
  expect(at[at.length - 1]).toBeLessThanOrEqual(written);
  expect(beats.every((b) => b.of === 1000 && b.last === batch[b.written - 1].id)).toBe(true);

  // The retry (Temporal hands it the last heartbeat's details) goes on from there, not from the first record.
  const last = beats[beats.length - 1];
  const second = new MockActivityEnvironment({ attempt: 2, heartbeatDetails: last });
  const more: RecordWriteProgress[] = [];
  second.on('heartbeat', (d: RecordWriteProgress) => more.push(d));
  expect(await second.run(writeInstanceRecords, batch)).toBe(1000);
  expect(puts() - written).toBe(1000 - last.written);
  expect(more[more.length - 1]).toEqual({ written: 1000, of: 1000, last: batch[999].id });
});
