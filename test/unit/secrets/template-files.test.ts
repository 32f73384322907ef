/** A template's `files` rendered per instance, as /v1/files delivers them (no AWS: a fake store and bucket). */
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { emptyDynamicGroups, parseConfigText } from '../../../common/config';
import { ObjectStore } from '../../../adapters/s3/objects';
import type { SecretStore } from '../../../adapters/secrets/store';
import { TemplateFiles } from '../../../workers/agent-api/template-files';
import { exampleWith, setPath } from '../config/example';

class MemoryStore implements SecretStore {
  readonly provider = 'aws-secrets-manager' as const;
  readonly prefix = 'nstance/demo/';
  values = new Map<string, string>();
  gets = 0;
  locate = (name: string) => `${this.prefix}${name}`;
  get = async (name: string) => (this.gets++, this.values.get(name));
  put = async (name: string, value: string) => void this.values.set(name, value);
  delete = async (name: string) => this.values.delete(name);
  list = async () => [...this.values.keys()];
  createIfAbsent = async (name: string, make: () => string) => ({ value: make(), created: true });
}

const objectsIn = (bucket: Map<string, string>) =>
  new ObjectStore({
    bucket: 'b',
    s3: {
      send: async (command: GetObjectCommand) => {
        const text = bucket.get(command.input.Key as string);
        if (text === undefined) throw Object.assign(new Error('no such key'), { name: 'NoSuchKey' });
        return { Body: { transformToString: async () => text }, ETag: '"e"' };
      },
    } as unknown as S3Client,
  });

const config = parseConfigText(
  exampleWith((c: Record<string, unknown>) =>
    void setPath(c, 'templates.web.files', {
      '/etc/app/token': { kind: 'secret', source: 'db/{{ .Tenant }}/{{ .Group }}/token' },
      'app/motd': { kind: 'storage', source: 'motd/{{ .Vars.Environment }}.txt' },
      '/etc/app/app.env': { kind: 'env', template: { INSTANCE: '{{ .Instance.ID }}', CLUSTER: '{{ .Cluster.ID }}' } },
      '/etc/app/app.json': { kind: 'json', template: { group: '{{ .Tenant }}/{{ .Group }}', port: 443, type: '{{ .Instance.Type }}' } },
      '/etc/app/hello': { kind: 'string', template: 'hello {{ .Instance.ID }}\n', mode: '0640' },
      '/etc/app/tls': { kind: 'certificate', template: 'web' },
    }),
    (c: Record<string, unknown>) => void setPath(c, 'certificates', { web: { kind: 'server' } }),
  ),
  'config.jsonc',
);

test('every kind rendered with the instance values; secrets and objects read once per TTL; one bad file does not stop the others', async () => {
  let now = 0;
  const store = new MemoryStore();
  store.values.set('db/default/web/token', 't0k3n');
  const env = { ...config.defaults.vars, ...config.templates.web.vars, ...config.groups.default.web.vars }.Environment;
  const bucket = new Map([[`motd/${env}.txt`, 'welcome']]);
  const files = new TemplateFiles({ ttlMs: 30_000, now: () => now });
  const request = (instanceId: string) => ({ config, dynamic: emptyDynamicGroups(), store, objects: objectsIn(bucket), instanceId, tenant: 'default', group: 'web', caCertPem: 'CA' });

  const rendered = await files.forInstance(request('web-1'));
  const byPath = Object.fromEntries(rendered.files.map((f) => [f.path, f]));
  expect(Object.keys(byPath).sort()).toEqual(['/etc/app/app.env', '/etc/app/app.json', '/etc/app/hello', '/etc/app/token', 'app/motd']);
  expect(byPath['/etc/app/token']).toEqual({ path: '/etc/app/token', mode: '0600', content: 't0k3n', source: 'nstance/demo/db/default/web/token' });
  expect(byPath['app/motd'].content).toBe('welcome');
  expect(byPath['/etc/app/app.env'].content).toBe(`CLUSTER=${config.cluster.id}\nINSTANCE=web-1\n`);
  expect(JSON.parse(byPath['/etc/app/app.json'].content)).toEqual({ group: 'default/web', port: 443, type: config.templates.web.instance_type });
  expect(byPath['/etc/app/hello']).toMatchObject({ content: 'hello web-1\n', mode: '0640' });
  // (A file naming an image id is refused when the config loads: config/invalid.test.)
  expect(rendered.problems).toEqual([]);

  // Another instance: its own values, the same secret read (cached).
  const gets = store.gets;
  const other = await files.forInstance(request('web-2'));
  expect(other.files.find((f) => f.path === '/etc/app/hello')?.content).toBe('hello web-2\n');
  expect(store.gets).toBe(gets);
  // A changed secret reaches instances once the TTL has passed.
  store.values.set('db/default/web/token', 'r0tated');
  now += 30_000;
  expect((await files.forInstance(request('web-1'))).files.find((f) => f.path === '/etc/app/token')?.content).toBe('r0tated');
});

test('certificate files become what to ask the CA for; with caching off, a look that asks for it still reads a secret once per its TTL', async () => {
  const store = new MemoryStore();
  await store.put('db/default/web/token', 't0k3n');
  const uncached = { ...config, cluster: { ...config.cluster, secrets: { ...config.cluster.secrets, cache_ttl: '0s' } } } as typeof config;
  const files = new TemplateFiles({ ttlMs: 30_000, now: () => 0 });
  const request = { config: uncached, dynamic: emptyDynamicGroups(), store, objects: objectsIn(new Map()), instanceId: 'web-1', tenant: 'default', group: 'web', caCertPem: 'CA' };
  const rendered = await files.forInstance(request);
  expect(rendered.certificates.map((c) => [c.path, c.entry, c.usage, c.certPath])).toEqual([['/etc/app/tls', 'web', 'server', '/etc/app/tls.crt']]);
  const gets = store.gets;
  await files.forInstance(request);
  expect(store.gets).toBe(gets + 1); // caching off: a fetch reads every time
  await files.forInstance({ ...request, uncachedTtlMs: 5_000 });
  await files.forInstance({ ...request, uncachedTtlMs: 5_000 });
  expect(store.gets).toBe(gets + 2); // a health report's look: once per 5 s
});

test("declared: every path the template names (a certificate file's certificate and key), rendered or not; nothing for a group no longer in the config", async () => {
  // No secret in the store: the secret file fails to render, and is still declared (a store outage must not remove it).
  const store = new MemoryStore();
  const files = new TemplateFiles({ ttlMs: 30_000 });
  const request = { config, dynamic: emptyDynamicGroups(), store, objects: objectsIn(new Map()), instanceId: 'web-1', tenant: 'default', group: 'web', caCertPem: 'CA' };
  const rendered = await files.forInstance(request);
  expect(rendered.files.map((f) => f.path)).not.toContain('/etc/app/token');
  expect(rendered.declared?.sort()).toEqual(['/etc/app/app.env', '/etc/app/app.json', '/etc/app/hello', '/etc/app/tls.crt', '/etc/app/tls.key', '/etc/app/token', 'app/motd']);
  expect((await files.forInstance({ ...request, group: 'gone' })).declared).toBeUndefined();
});
