/** Nstance's `files` and `certificates`: good specs load, bad ones are rejected naming the field. */
import { ConfigValidationError, parseConfigText } from '../../../common/config';
import { exampleWith, setPath } from '../config/example';

type Node = Record<string, unknown>;
const set = (path: string, value: unknown) => (c: Node) => void setPath(c, path, value);
const files = (value: unknown) => set('templates.web.files', value);
const certs = { web: { kind: 'server', cn: '{{ .Instance.ID }}', dns: ['{{ .Instance.ID }}.internal'], ttl: 720 }, ca: { cn: 'demo CA', ttl: '87600h' } };

const good = {
  '/etc/app/token': { kind: 'secret', source: 'files/{{ .Tenant }}/{{ .Group }}/token' },
  'app/motd': { kind: 'storage', source: 'files/motd.txt', mode: '0644' },
  '/etc/app/tls': { kind: 'certificate', template: 'web', key: { source: 'agent', name: 'tls' } },
  '/etc/app/app.env': { kind: 'env', template: { ENVIRONMENT: '{{ .Vars.Environment }}', INSTANCE: '{{ .Instance.ID }}' } },
  '/etc/app/app.json': { kind: 'json', template: { cluster: '{{ .Cluster.ID }}', ports: [443, 8443], tls: true } },
  '/etc/app/hello': { kind: 'string', template: 'hello from {{ .Instance.ID }} in {{ .Shard.ID }}\n' },
};

function errorOf(text: string): ConfigValidationError {
  try {
    parseConfigText(text, 'config.jsonc');
  } catch (e) {
    if (e instanceof ConfigValidationError) return e;
    throw e;
  }
  throw new Error('expected the config to be rejected');
}

test('every kind loads', () => {
  const config = parseConfigText(exampleWith(files(good), set('certificates', certs)), 'config.jsonc');
  expect(Object.keys(config.templates.web.files ?? {})).toHaveLength(6);
});

const cases: { name: string; edits: ((c: Node) => void)[]; path: string; says: string }[] = [
  { name: 'unknown kind', edits: [files({ a: { kind: 'blob', source: 'x' } })], path: 'templates.web.files.a.kind', says: 'must be "secret" or "storage" or "certificate"' },
  { name: 'secret without source', edits: [files({ a: { kind: 'secret' } })], path: 'templates.web.files.a.source', says: 'a secret file needs source' },
  { name: 'secret with template', edits: [files({ a: { kind: 'secret', source: 's', template: 'x' } })], path: 'templates.web.files.a.template', says: 'a secret file takes no template' },
  { name: 'storage with a key', edits: [files({ a: { kind: 'storage', source: 's', key: { source: 'agent' } } })], path: 'templates.web.files.a.key', says: 'only certificate files have a key' },
  { name: 'bad template in source', edits: [files({ a: { kind: 'secret', source: 'db/{{ .Instance.Zone }}' } })], path: 'templates.web.files.a.source', says: 'write one of {{ .Instance.ID }}' },
  { name: 'nonce in a file', edits: [files({ a: { kind: 'string', template: 'n={{ .Nonce }}' } })], path: 'templates.web.files.a.template', says: 'only goes in userdata' },
  { name: 'env template not an object', edits: [files({ a: { kind: 'env', template: 'A=1' } })], path: 'templates.web.files.a.template', says: "an env file's template is an object" },
  { name: 'env bad variable name', edits: [files({ a: { kind: 'env', template: { '1A': 'x' } } })], path: 'templates.web.files.a.template.1A', says: 'invalid variable name "1A"' },
  { name: 'env non-string value', edits: [files({ a: { kind: 'env', template: { PORT: 443 } } })], path: 'templates.web.files.a.template.PORT', says: 'env values are strings' },
  { name: 'json template a string', edits: [files({ a: { kind: 'json', template: '{}' } })], path: 'templates.web.files.a.template', says: 'a JSON object or list' },
  { name: 'json nested bad reference', edits: [files({ a: { kind: 'json', template: { x: [{ y: '{{ .Foo }}' }] } } })], path: 'templates.web.files.a.template.x[0].y', says: 'unknown template reference {{ .Foo }}' },
  { name: 'string without template', edits: [files({ a: { kind: 'string' } })], path: 'templates.web.files.a.template', says: 'a string file needs template' },
  { name: 'certificate naming nothing', edits: [files({ a: { kind: 'certificate' } })], path: 'templates.web.files.a.template', says: 'names its certificates entry' },
  { name: 'certificate with source', edits: [files({ a: { kind: 'certificate', template: 'web', source: 'x' } }), set('certificates', certs)], path: 'templates.web.files.a.source', says: 'issued by the cluster CA' },
  { name: 'unknown certificate', edits: [files({ a: { kind: 'certificate', template: 'wbe' } }), set('certificates', certs)], path: 'templates.web.files.a.template', says: 'unknown certificate "wbe"; defined certificates: web; did you mean "web"?' },
  { name: 'certificate naming the CA', edits: [files({ a: { kind: 'certificate', template: 'ca' } }), set('certificates', certs)], path: 'templates.web.files.a.template', says: '"ca" configures the CA' },
  { name: 'key from elsewhere', edits: [files({ a: { kind: 'certificate', template: 'web', key: { source: 'server' } } }), set('certificates', certs)], path: 'templates.web.files.a.key.source', says: 'must be "agent"' },
  { name: 'world-writable mode', edits: [files({ a: { kind: 'string', template: 'x', mode: '0666' } })], path: 'templates.web.files.a.mode', says: "drop the others' write bit" },
  { name: 'bad mode', edits: [files({ a: { kind: 'string', template: 'x', mode: 'rw' } })], path: 'templates.web.files.a.mode', says: 'octal permission' },
  { name: 'file name climbing out', edits: [files({ '../etc/passwd': { kind: 'string', template: 'x' } })], path: 'templates.web.files["../etc/passwd"]', says: 'no "." or ".." parts' },
  { name: 'key name climbing out', edits: [files({ a: { kind: 'certificate', template: 'web', key: { source: 'agent', name: '../x' } } }), set('certificates', certs)], path: 'templates.web.files.a.key.name', says: 'invalid key name "../x"' },
  { name: 'key name absolute', edits: [files({ a: { kind: 'certificate', template: 'web', key: { source: 'agent', name: '/etc/x.key' } } }), set('certificates', certs)], path: 'templates.web.files.a.key.name', says: 'not a path' },
  {
    name: "a certificate's .crt on another file's path",
    edits: [files({ '/etc/app/tls': { kind: 'certificate', template: 'web' }, '/etc/app/tls.crt': { kind: 'string', template: 'x' } }), set('certificates', certs)],
    path: 'templates.web.files["/etc/app/tls.crt"]',
    says: 'writes /etc/app/tls.crt, which templates.web.files["/etc/app/tls"] writes too',
  },
  {
    name: "a certificate's .key on another file's path",
    edits: [files({ '/etc/app/tls.pem': { kind: 'certificate', template: 'web' }, '/etc/app/tls.key': { kind: 'secret', source: 'k' } }), set('certificates', certs)],
    path: 'templates.web.files["/etc/app/tls.key"]',
    says: 'writes /etc/app/tls.key, which templates.web.files["/etc/app/tls.pem"] writes too',
  },
  {
    name: "a renamed agent key on another file's path",
    edits: [files({ '/etc/app/other.pub': { kind: 'string', template: 'x' }, '/etc/app/tls': { kind: 'certificate', template: 'web', key: { source: 'agent', name: 'other.key' } } }), set('certificates', certs)],
    path: 'templates.web.files["/etc/app/tls"].key.name',
    says: 'writes /etc/app/other.pub, which templates.web.files["/etc/app/other.pub"] writes too',
  },
  {
    name: 'relative and absolute names of one path',
    edits: [files({ 'app/x': { kind: 'string', template: 'a' }, '/app/x': { kind: 'string', template: 'b' } })],
    path: 'templates.web.files["/app/x"]',
    says: 'writes /app/x, which templates.web.files["app/x"] writes too',
  },
  { name: "a file on the agent's CA certificate", edits: [files({ '/etc/nstance/ca.crt': { kind: 'string', template: 'x' } })], path: 'templates.web.files["/etc/nstance/ca.crt"]', says: 'the cluster CA certificate the agent receives itself' },
  {
    name: "a certificate landing on the agent's CA certificate",
    edits: [files({ 'etc/nstance/ca': { kind: 'certificate', template: 'web' } }), set('certificates', certs)],
    path: 'templates.web.files["etc/nstance/ca"]',
    says: '/etc/nstance/ca.crt is the cluster CA certificate',
  },
  { name: "a file in the agent's state directory", edits: [files({ '/var/lib/nstance-agent/key.pem': { kind: 'string', template: 'x' } })], path: 'templates.web.files["/var/lib/nstance-agent/key.pem"]', says: "in the agent's state directory" },
  { name: 'undefined var in a file', edits: [files({ a: { kind: 'string', template: '{{ .Vars.Region }}' } })], path: 'groups.default.web.vars', says: 'no var "Region" (used as {{ .Vars.Region }} in templates.web.files.a.template)' },
  { name: 'certificate kind', edits: [set('certificates', { web: { kind: 'peer' } })], path: 'certificates.web.kind', says: 'must be "client" or "server"' },
  { name: 'certificate ttl', edits: [set('certificates', { web: { kind: 'client', ttl: 0 } })], path: 'certificates.web.ttl', says: 'ttl' },
  { name: 'certificate dns template', edits: [set('certificates', { web: { kind: 'server', dns: ['{{ .Instance.Host }}'] } })], path: 'certificates.web.dns[0]', says: 'write one of {{ .Instance.ID }}' },
  { name: 'ca entry takes no kind', edits: [set('certificates', { ca: { kind: 'server' } })], path: 'certificates.ca.kind', says: 'the ca entry takes no kind: the CA signs certificates' },
  { name: 'ca entry takes no SANs', edits: [set('certificates', { ca: { dns: ['ca.internal'] } })], path: 'certificates.ca.dns', says: 'the ca entry takes no dns: a CA certificate names no hosts' },
  { name: 'ca entry typo', edits: [set('certificates', { ca: { organisation: ['x'] } })], path: 'certificates.ca.organisation', says: 'unknown field "organisation"; did you mean "organization"?' },
  { name: 'ca entry per-instance value', edits: [set('certificates', { ca: { cn: '{{ .Instance.ID }} CA' } })], path: 'certificates.ca.cn', says: 'the CA is made once for the whole cluster' },
  { name: 'ca entry var not in defaults', edits: [set('certificates', { ca: { cn: '{{ .Vars.Nope }} CA' } })], path: 'certificates.ca.cn', says: 'the CA is rendered with defaults.vars only, which has no var "Nope"' },
  { name: 'certificate ip not an address', edits: [set('certificates', { web: { kind: 'server', ip: ['10.0.0.300'] } })], path: 'certificates.web.ip[0]', says: 'invalid IP address "10.0.0.300"' },
  { name: 'certificate uri without scheme', edits: [set('certificates', { web: { kind: 'client', uri: ['cluster/web'] } })], path: 'certificates.web.uri[0]', says: 'an absolute URI with a scheme' },
  {
    name: 'certificate entry var the group lacks',
    edits: [files({ a: { kind: 'certificate', template: 'web' } }), set('certificates', { web: { kind: 'server', dns: ['{{ .Vars.Domain }}'] } })],
    path: 'groups.default.web.vars',
    says: 'no var "Domain" (used as {{ .Vars.Domain }} in templates.web.files.a.template (certificates.web.dns)',
  },
  { name: 'unknown certificate field', edits: [set('certificates', { web: { kind: 'server', sans: [] } })], path: 'certificates.web.sans', says: 'allowed fields: kind, cn' },
];

test.each(cases)('$name', ({ edits, path, says }) => {
  const err = errorOf(exampleWith(...edits));
  const line = err.message.split('\n').find((l) => l.startsWith(`config.jsonc: ${path}: `) && l.includes(says));
  if (!line) throw new Error(`no line for ${path} containing ${JSON.stringify(says)} in:\n${err.message}`);
});
