/**
 * A template's `files` reach the instance through the real agent: object-storage secrets (key
 * from env), a storage object, and env, json and string files rendered with the instance's values,
 * written atomically with their modes. A changed secret reaches the running instance on its next
 * fetch, without replacing it. (Certificate files are issued with an agent-made key: not here.)
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { SimulatedFleet } from '../../client/agent/fleet';
import { applyConfig } from '../../client/ops/apply';
import { openSecrets, putSecret } from '../../client/ops/secrets';
import { MutableLeadershipGate } from '../../workers/leadership/gate';
import { eventually } from '../support/emulator';
import { configText, seedShard, terminateShardWorkflows, testConfig } from '../support/fixtures';
import { createHarness, type Harness } from '../support/harness';
import { startAgentApiWorker } from '../support/agent-api-worker';

const shard = `fil-${Date.now().toString(36)}`;
const KEY_VAR = `NSTANCE_TEST_FILES_KEY_${shard.toUpperCase().replace(/-/g, '_')}`;
const USERDATA = '#!/bin/bash\n/opt/nstance/agent --register {{ .Server.RegistrationAddr }} --nonce {{ .Nonce }}\n';
let h: Harness;
let fleet: SimulatedFleet;
let stateRoot: string;
const gate = new MutableLeadershipGate();

beforeAll(async () => {
  process.env[KEY_VAR] = randomBytes(32).toString('base64');
  h = await createHarness({ shard, bucket: `nstance-${shard}` });
  const seed = await seedShard(h);
  const config = testConfig(seed, { shard, bucket: h.bucket, size: 1 }) as { cluster: Record<string, unknown>; templates: { web: Record<string, unknown> & { userdata: { content: string } } } };
  config.cluster.secrets = { provider: 'object-storage', encryption_key: { provider: 'env', source: KEY_VAR }, cache_ttl: '1s' };
  config.templates.web.userdata.content = USERDATA;
  config.templates.web.files = {
    '/etc/app/token': { kind: 'secret', source: 'app/{{ .Tenant }}/{{ .Group }}/token' },
    '/etc/app/motd': { kind: 'storage', source: 'files/motd-{{ .Vars.Environment }}.txt', mode: '0644' },
    '/etc/app/app.env': { kind: 'env', template: { INSTANCE: '{{ .Instance.ID }}', ENVIRONMENT: '{{ .Vars.Environment }}' } },
    '/etc/app/app.json': { kind: 'json', template: { group: '{{ .Tenant }}/{{ .Group }}', replicas: 3 } },
    '/etc/app/hello': { kind: 'string', template: 'hello from {{ .Instance.ID }}\n', mode: '0640' },
  };
  await applyConfig({ client: h.client, s3: h.aws.s3, text: configText(config), file: 'config.jsonc', actor: 'test' });
  const opened = await openSecrets({ aws: h.aws, bucket: h.bucket, shard, actor: 'test' });
  await putSecret(opened, 'app/default/web/token', 'first-token');
  await h.aws.s3.send(new PutObjectCommand({ Bucket: h.bucket, Key: 'files/motd-test.txt', Body: 'welcome' }));
  gate.set({ leader: true, epoch: 1 });
  const { address } = await startAgentApiWorker(h, gate);
  stateRoot = mkdtempSync(join(tmpdir(), 'nstance-files-fleet-'));
  fleet = new SimulatedFleet({ ec2: h.aws.ec2, shard, resolveAddress: () => address, stateRoot, pollMs: 300 }).start();
});

afterAll(async () => {
  await fleet?.stop();
  await terminateShardWorkflows(h.client, shard);
  await h.close();
  delete process.env[KEY_VAR];
});

test('every kind but certificate arrives rendered for the instance, with its mode; a changed secret arrives without replacement', async () => {
  await eventually('1 registered agent', async () => (fleet.registered().length === 1 ? true : undefined), 90_000);
  const [member] = [...fleet.members.values()];
  const root = join(stateRoot, member.ec2InstanceId, 'files');
  const file = (path: string) => join(root, path);
  await member.agent.fetchFiles();

  expect(readFileSync(file('etc/app/token'), 'utf8')).toBe('first-token');
  expect(statSync(file('etc/app/token')).mode & 0o777).toBe(0o600);
  expect(readFileSync(file('etc/app/motd'), 'utf8')).toBe('welcome');
  expect(statSync(file('etc/app/motd')).mode & 0o777).toBe(0o644);
  expect(readFileSync(file('etc/app/app.env'), 'utf8')).toBe(`ENVIRONMENT=test\nINSTANCE=${member.instanceId}\n`);
  expect(JSON.parse(readFileSync(file('etc/app/app.json'), 'utf8'))).toEqual({ group: 'default/web', replicas: 3 });
  expect(readFileSync(file('etc/app/hello'), 'utf8')).toBe(`hello from ${member.instanceId}\n`);
  expect(statSync(file('etc/app/hello')).mode & 0o777).toBe(0o640);
  expect(readFileSync(file('etc/nstance/ca.crt'), 'utf8')).toContain('BEGIN CERTIFICATE');

  // The secret changes (cache_ttl 1s): the same instance gets the new value on a later fetch.
  await putSecret(await openSecrets({ aws: h.aws, bucket: h.bucket, shard, actor: 'test' }), 'app/default/web/token', 'second-token');
  await eventually(
    'the new token on the instance',
    async () => {
      await member.agent.fetchFiles();
      return readFileSync(file('etc/app/token'), 'utf8') === 'second-token' ? true : undefined;
    },
    20_000,
    500,
  );
  expect(fleet.registered()).toEqual([member.instanceId]);
});
