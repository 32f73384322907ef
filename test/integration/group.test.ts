import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeImagesCommand } from '@aws-sdk/client-ec2';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { stringify as stringifyYaml } from 'yaml';
import { parseConfigText } from '../../common/config';
import { runCli } from '../support/cli';
import { s3Keys, TAG } from '../../common/names';
import { groupStatus, waitForConvergence } from '../../client/ops/status';
import { ALIVE_STATES, eventually, shardInstances, tagOf } from '../support/emulator';
import { configText } from '../support/fixtures';
import { useShard } from '../support/shard-fixture';
import { auditedCreations, readAuditLog } from '../support/audit-log';

const fx = useShard('grp', { worker: true });
const { shard, ref } = fx;

async function apply(size: number) {
  return fx.apply({ size });
}

/** Waits until Temporal says the group converged AND the emulator holds exactly `size` tagged instances. */
async function converged(size: number) {
  const status = await waitForConvergence(fx.client, ref, { timeoutMs: 90_000, size, pollMs: 300 });
  const running = await eventually(`${size} instances in the emulator`, async () => {
    const found = await shardInstances(fx.aws.ec2, shard, ALIVE_STATES);
    return found.length === size ? found : undefined;
  });
  const ids = running.map((i) => tagOf(i, TAG.instanceId)).sort();
  expect(ids).toEqual(status.members.map((m) => m.instanceId).sort());
  expect(running.map((i) => i.InstanceId).sort()).toEqual(status.members.map((m) => m.ec2InstanceId).sort());
  return { status, running };
}

/** Ids of the images the example's filter matches with the newest creation date (there can be ties). */
async function newestMatchingImages(): Promise<string[]> {
  const out = await fx.aws.ec2.send(
    new DescribeImagesCommand({ Owners: ['amazon'], Filters: [{ Name: 'name', Values: ['al2023-ami-2023.*-arm64'] }, { Name: 'architecture', Values: ['arm64'] }] }),
  );
  const images = out.Images ?? [];
  const newest = images.map((i) => i.CreationDate ?? '').sort().at(-1);
  expect(images.length).toBeGreaterThan(0);
  return images.filter((i) => i.CreationDate === newest).map((i) => i.ImageId ?? '');
}

test('a group of 3 converges to exactly 3 tagged instances in the emulator', async () => {
  await apply(3);
  const { running } = await converged(3);
  const newestArm = await newestMatchingImages();
  for (const instance of running) {
    expect(tagOf(instance, TAG.clusterId)).toBe('test');
    expect(tagOf(instance, TAG.shard)).toBe(shard);
    expect(tagOf(instance, TAG.group)).toBe('default/web');
    expect(tagOf(instance, TAG.managed)).toBe('true');
    expect(newestArm).toContain(instance.ImageId);
    expect(instance.InstanceType).toBe('m7g.large');
    expect(fx.seed.subnetIds).toContain(instance.SubnetId);
    expect(instance.MetadataOptions?.HttpTokens).toBe('required');
    expect(instance.SecurityGroups?.map((g) => g.GroupId)).toContain(fx.seed.securityGroupId);
  }
});

test('the Web UI filters find the runs: NstanceGroup and NstanceInstanceId select the workflows', async () => {
  const status = await groupStatus(fx.client, ref);
  const running = async (query: string) => {
    const ids: string[] = [];
    for await (const wf of fx.client.workflow.list({ query: `${query} AND ExecutionStatus = 'Running'` })) ids.push(wf.workflowId);
    return ids.sort();
  };
  const instanceIds = status.members.map((m) => `nstance:${shard}:instance:${m.instanceId}`);
  await eventually('visibility caught up', async () => {
    const inGroup = await running(`NstanceShard = '${shard}' AND NstanceGroup = 'default/web'`);
    return JSON.stringify(inGroup) === JSON.stringify([`nstance:${shard}:group:default/web`, ...instanceIds].sort()) ? true : undefined;
  });
  const one = status.members[0];
  await eventually('found by EC2 instance id', async () => {
    const found = await running(`NstanceInstanceId = '${one.ec2InstanceId}'`);
    return JSON.stringify(found) === JSON.stringify([`nstance:${shard}:instance:${one.instanceId}`]) ? true : undefined;
  });
});

test('scaling 3 -> 5 -> 1 converges each time and keeps the newest', async () => {
  await fx.scale(5);
  const five = await converged(5);
  const newest = [...five.status.members].sort((a, b) => b.seq - a.seq)[0];

  await fx.scale(1);
  const one = await converged(1);
  expect(one.status.members[0].instanceId).toBe(newest.instanceId);
  expect(tagOf(one.running[0], TAG.instanceId)).toBe(newest.instanceId);
  // The four removed were terminated in EC2, not just forgotten.
  const terminated = await shardInstances(fx.aws.ec2, shard, ['shutting-down', 'terminated']);
  expect(terminated.length).toBeGreaterThanOrEqual(4);
});

test('applying a config with a new size converges (and replaces the scale override)', async () => {
  const result = await apply(2);
  expect(result.droppedOverrides).toEqual(['default/web']);
  await converged(2);
  expect((await groupStatus(fx.client, ref)).desired).toBe(2);
});

test('every scale request, config apply, creation and termination is audited once', async () => {
  const entries = await readAuditLog(fx.aws.s3, fx.bucket, shard);
  const count = (action: string) => entries.filter((e) => e.action === action).length;
  expect(count('config.apply')).toBe(2);
  expect(count('group.scale')).toBe(2);
  // 3 + 2 (scale up) + 1 (after scale-down to 1, apply 2) = 6 created, each once (start batches audit their
  // launches in one entry, one per batch here); 4 terminated on scale-down.
  const created = auditedCreations(entries);
  expect(created).toHaveLength(6);
  expect(new Set(created.map((c) => c.ec2InstanceId)).size).toBe(6);
  expect(new Set(created.map((c) => c.instanceId)).size).toBe(6);
  expect(count('instance.create')).toBe(3);
  expect(count('instance.terminate')).toBe(4);
});

test('the CLI reports groups and instances as JSON, and `group scale --wait` converges', async () => {
  const scaled = await runCli('group', 'scale', 'default/web', '3', '--shard', shard, '--bucket', fx.bucket, '--wait', '--timeout', '90s');
  expect(scaled.stderr).toBe('');
  expect(scaled.code).toBe(0);
  expect(scaled.stdout).toContain('default/web: converged at 3');
  // Off a terminal (runCli's output is captured), the wait prints a line each time the counts change, the last
  // one converged: the progress of a real scale-up, from 2 running to 3.
  const progress = scaled.stdout.split('\n').filter((l) => /^default\/web: desired \d+, running \d+, pending \d+, draining \d+$/.test(l));
  expect(progress.length).toBeGreaterThanOrEqual(2);
  expect(progress[0]).toMatch(/running 2,/);
  expect(progress.at(-1)).toBe('default/web: desired 3, running 3, pending 0, draining 0');
  expect(progress.filter((l, i) => l === progress[i - 1])).toEqual([]);

  const groups = await runCli('groups', '--json', '--shard', shard);
  expect(groups.code).toBe(0);
  expect(JSON.parse(groups.stdout)).toEqual([{ shard, tenant: 'default', group: 'web', desired: 3, running: 3, inService: 0, pending: 0, draining: 0 }]);

  const instances = await runCli('instances', '--group', 'default/web', '--json', '--shard', shard);
  const rows = JSON.parse(instances.stdout) as { id: string; ec2InstanceId: string; group: string; phase: string; privateIp: string; launchedAt: string }[];
  const inEmulator = await shardInstances(fx.aws.ec2, shard);
  expect(rows.map((r) => r.ec2InstanceId).sort()).toEqual(inEmulator.map((i) => i.InstanceId).sort());
  for (const row of rows) {
    expect(row).toEqual({ id: expect.stringMatching(/^web-/), ec2InstanceId: expect.stringMatching(/^i-/), group: 'default/web', phase: 'running', privateIp: expect.stringMatching(/^10\.0\./), launchedAt: expect.any(String), instanceType: 'm7g.large' });
  }

  const unknown = await runCli('instances', '--group', 'default/wbe', '--shard', shard);
  expect(unknown.code).toBe(1);
  expect(unknown.stderr).toContain('--group default/wbe: no such group in shard');
  expect(unknown.stderr).toContain('default/web');

  const table = await runCli('groups', '--shard', shard);
  expect(table.stdout).toMatch(/default\s.*web\s.*3\s.*3\s.*0\s.*0\s.*0/);
});

test('`group scale --wait` exits non-zero with the reason when the group cannot converge in time', async () => {
  const result = await runCli('group', 'scale', 'default/web', '4', '--shard', shard, '--bucket', fx.bucket, '--wait', '--timeout', '1ms');
  expect(result.code).toBe(1);
  expect(result.stderr).toMatch(/did not converge within/);
});

test('`config validate` exits 1 naming the field; 0 for a valid file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nstance-cli-'));
  const bad = fx.config({ size: 1 }) as { groups: Record<string, Record<string, { template: string }>> };
  bad.groups.default.web.template = 'wbe';
  writeFileSync(join(dir, 'bad.jsonc'), JSON.stringify(bad));
  writeFileSync(join(dir, 'good.jsonc'), configText(fx.config({ size: 1 })));
  const invalid = await runCli('config', 'validate', '-f', join(dir, 'bad.jsonc'));
  expect(invalid.code).toBe(1);
  expect(invalid.stderr).toContain('groups.default.web.template: unknown template "wbe"');
  const valid = await runCli('config', 'validate', '-f', join(dir, 'good.jsonc'));
  expect(valid.code).toBe(0);
  expect(valid.stdout).toContain('valid');
});

test('a YAML config applied through the CLI is stored as JSONC that every reader parses, and the group converges', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nstance-cli-'));
  const file = join(dir, 'config.yaml');
  writeFileSync(file, `# the shard, in YAML\n${stringifyYaml(fx.config({ size: 3 }))}`);
  const applied = await runCli('config', 'apply', '-f', file);
  expect(applied.stderr).toBe('');
  expect(applied.code).toBe(0);

  const stored = await fx.aws.s3.send(new GetObjectCommand({ Bucket: fx.bucket, Key: s3Keys.config(shard) }));
  const text = await stored.Body!.transformToString();
  expect(parseConfigText(text, 'config.jsonc').groups?.default.web.size).toBe(3);
  expect(applied.stdout).toContain('default/web');
  await converged(3);
  // The next apply reads the stored (formerly YAML) config back as its previous version.
  await fx.apply({ size: 3 });
});
