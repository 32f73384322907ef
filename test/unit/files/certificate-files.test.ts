/** Certificate files: what is asked of the CA for an instance, when it is issued again, and the keys on either side. */
import { createPublicKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { caSubject } from '../../../adapters/pki/location';
import { createCaCertificate, issueCertificate } from '../../../adapters/pki/x509';
import { isIpAddress, type CertificateConfig } from '../../../common/config/certificates';
import type { FileConfig } from '../../../common/config/files';
import type { TemplateData } from '../../../common/template';
import { CertificateFiles, type FileCertificateIssuer } from '../../../workers/agent-api/certificate-files';
import { certificateFileSpec, certificatePaths, reissueAt } from '../../../workers/agent-api/certificate-spec';

const DATA: TemplateData = { Instance: { ID: 'web-abc', Kind: 'web', Type: 't3.micro' }, Vars: { Domain: 'example.internal', Ip: '10.1.2.3', Empty: '' }, Cluster: { ID: 'c1' }, Shard: { ID: 's1' }, Group: 'web', Tenant: 'default', Server: {}, Image: {} };
const FILE: FileConfig = { kind: 'certificate', template: 'web' };
const ENTRY: CertificateConfig = {
  kind: 'server',
  cn: '{{ .Instance.ID }}.{{ .Vars.Domain }}',
  dns: ['{{ .Instance.ID }}.{{ .Vars.Domain }}', '{{ .Vars.Empty }}'],
  ip: ['{{ .Vars.Ip }}', '127.0.0.1'],
  uri: ['spiffe://{{ .Cluster.ID }}/{{ .Tenant }}/{{ .Group }}'],
  organization: ['{{ .Tenant }}'],
  country: ['AU'],
  ttl: 24,
};
const spec = (entry: CertificateConfig = ENTRY, file: FileConfig = FILE) => certificateFileSpec('/etc/app/tls', file, 'web', entry, DATA, 'templates.web.files./etc/app/tls');

test('the entry is rendered with the instance values; an empty SAN is left out; ttl hours', () => {
  const s = spec();
  expect(s).toMatchObject({
    usage: 'server',
    commonName: 'web-abc.example.internal',
    dnsNames: ['web-abc.example.internal'],
    ips: ['10.1.2.3', '127.0.0.1'],
    uris: ['spiffe://c1/default/web'],
    details: { organization: ['default'], country: ['AU'] },
    ttlMs: 24 * 3600_000,
    certPath: '/etc/app/tls.crt',
    keyPath: '/etc/app/tls.key',
  });
  expect(s.agentKey).toBeUndefined();
  expect(spec({ ...ENTRY, ttl: '30d' }).ttlMs).toBe(30 * 24 * 3600_000);
  expect(spec({ kind: 'client' }).commonName).toBe('web-abc');
  // A change of anything rendered is a new digest (a new certificate); the same inputs, the same digest.
  expect(spec().digest).toBe(spec().digest);
  expect(spec({ ...ENTRY, dns: ['other'] }).digest).not.toBe(spec().digest);
});

test('a rendered value that is no IP or URI is refused naming the field', () => {
  expect(() => spec({ ...ENTRY, ip: ['{{ .Vars.Domain }}'] })).toThrow('certificates.web.ip[0] rendered as "example.internal", which is not an IP address');
  expect(() => spec({ ...ENTRY, uri: ['{{ .Vars.Domain }}'] })).toThrow('certificates.web.uri[0] rendered as "example.internal", which is not an absolute URI');
  expect(() => spec({ ...ENTRY, cn: '{{ .Vars.Missing }}' })).toThrow('unknown reference .Vars.Missing');
});

test("file layout: <path>.crt and .key as Nstance; a .crt/.pem path is the certificate's own; key.name renames the agent's pair", () => {
  expect(certificatePaths('/etc/app/tls', {})).toEqual({ certPath: '/etc/app/tls.crt', keyPath: '/etc/app/tls.key' });
  expect(certificatePaths('/etc/ssl/web.pem', {})).toEqual({ certPath: '/etc/ssl/web.pem', keyPath: '/etc/ssl/web.key' });
  expect(certificatePaths('/etc/app/tls', { key: { source: 'agent' } })).toEqual({ certPath: '/etc/app/tls.crt', keyPath: '/etc/app/tls.key', publicKeyPath: '/etc/app/tls.pub' });
  expect(certificatePaths('/etc/app/tls.crt', { key: { source: 'agent', name: 'kubelet.pub' } })).toEqual({ certPath: '/etc/app/tls.crt', keyPath: '/etc/app/kubelet.key', publicKeyPath: '/etc/app/kubelet.pub' });
});

test('reissued two thirds through its life', () => {
  expect(reissueAt({ issuedAtMs: 0, notAfterMs: 3_000 })).toBe(2_000);
});

describe('CertificateFiles', () => {
  const caKey = generateKeyPairSync('ed25519').privateKey;
  let caPem: string;
  let clock = Date.parse('2026-12-01T00:00:00Z');
  const who = { instanceId: 'web-abc', tenant: 'default', group: 'web' };
  let issued = 0;
  const issuer: FileCertificateIssuer = async ({ spec: s, publicKey, now }) => {
    issued++;
    const cert = await issueCertificate({ caCertPem: caPem, caKey, publicKey, commonName: s.commonName, usage: s.usage, subjectDetails: s.details, dnsNames: s.dnsNames, ips: s.ips, uris: s.uris, validityDays: s.ttlMs / 86_400_000, now });
    return { certPem: cert.pem, serialNumber: cert.serialNumber, notAfter: cert.notAfter };
  };

  beforeAll(async () => {
    caPem = await createCaCertificate(caKey, 'c1', clock);
  });

  test('server key: certificate and key delivered, valid against the CA (SANs, EKU, validity); the same pair until due, then a new one', async () => {
    const files = new CertificateFiles({ now: () => clock });
    const first = await files.forInstance(who, [spec()], issuer);
    expect(first.keyRequests).toEqual([]);
    const crt = first.files.find((f) => f.path === '/etc/app/tls.crt');
    const key = first.files.find((f) => f.path === '/etc/app/tls.key');
    expect(key?.mode).toBe('0600');
    const cert = new X509Certificate(crt?.content ?? '');
    expect(cert.checkIssued(new X509Certificate(caPem))).toBe(true);
    expect(cert.verify(createPublicKey(caKey))).toBe(true);
    expect(cert.subjectAltName).toBe('DNS:web-abc.example.internal, IP Address:10.1.2.3, IP Address:127.0.0.1, URI:spiffe://c1/default/web');
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect(cert.subject).toContain('CN=web-abc.example.internal');
    expect(cert.subject).toContain('O=default');
    expect(cert.subject).toContain('C=AU');
    expect(Date.parse(cert.validTo) - clock).toBe(24 * 3600_000);
    expect(cert.publicKey.export({ format: 'jwk' })).toEqual(createPublicKey(key?.content ?? '').export({ format: 'jwk' }));

    // Asked again before it is due: the same files, nothing issued.
    expect((await files.forInstance(who, [spec()], issuer)).files).toEqual(first.files);
    expect(issued).toBe(1);
    // A look that does not issue (the health path) sees nothing pending.
    expect((await files.forInstance(who, [spec()])).pending).toEqual([]);

    clock += 16 * 3600_000 + 1; // past 2/3 of 24 h
    expect((await files.forInstance(who, [spec()])).pending).toEqual(['/etc/app/tls']);
    const second = await files.forInstance(who, [spec()], issuer);
    expect(issued).toBe(2);
    expect(second.files.find((f) => f.path === '/etc/app/tls.crt')?.content).not.toBe(crt?.content);
    expect(Date.parse(new X509Certificate(second.files[0].content).validFrom)).toBeLessThanOrEqual(clock);

    // A spec change (another DNS name) is a new certificate at once.
    await files.forInstance(who, [spec({ ...ENTRY, dns: ['new.example.internal'] })], issuer);
    expect(issued).toBe(3);
  });

  test('agent key: asked for until submitted; the certificate is for that key and no private key is delivered', async () => {
    const files = new CertificateFiles({ now: () => clock });
    const agentSpec = spec({ kind: 'client', cn: '{{ .Instance.ID }}' }, { kind: 'certificate', template: 'web', key: { source: 'agent' } });
    const asked = await files.forInstance(who, [agentSpec], issuer);
    expect(asked.files).toEqual([]);
    expect(asked.keyRequests).toEqual([{ path: '/etc/app/tls', keyPath: '/etc/app/tls.key', publicKeyPath: '/etc/app/tls.pub' }]);
    const agentKey = generateKeyPairSync('ed25519');
    files.submitPublicKey(who.instanceId, '/etc/app/tls', agentKey.publicKey);
    const got = await files.forInstance(who, [agentSpec], issuer);
    expect(got.files.map((f) => f.path)).toEqual(['/etc/app/tls.crt']);
    const cert = new X509Certificate(got.files[0].content);
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
    expect(cert.publicKey.export({ format: 'jwk' })).toEqual(agentKey.publicKey.export({ format: 'jwk' }));
    // Another key submitted (the agent made a new pair): a certificate for it.
    const next = generateKeyPairSync('ed25519');
    files.submitPublicKey(who.instanceId, '/etc/app/tls', next.publicKey);
    expect((await files.forInstance(who, [agentSpec])).pending).toEqual(['/etc/app/tls']);
    const again = await files.forInstance(who, [agentSpec], issuer);
    expect(new X509Certificate(again.files[0].content).publicKey.export({ format: 'jwk' })).toEqual(next.publicKey.export({ format: 'jwk' }));
  });

  test('issues are budgeted per second: past the budget a file is pending (the certificate in hand still delivered) and issued on a later fetch', async () => {
    const files = new CertificateFiles({ now: () => clock, issuesPerSecond: 1 });
    const a = { ...who, instanceId: 'web-a' };
    const b = { ...who, instanceId: 'web-b' };
    expect((await files.forInstance(a, [spec()], issuer)).files).toHaveLength(2);
    const over = await files.forInstance(b, [spec()], issuer);
    expect(over).toMatchObject({ files: [], pending: ['/etc/app/tls'] });
    await new Promise((r) => setTimeout(r, 1100));
    expect((await files.forInstance(b, [spec()], issuer)).files).toHaveLength(2);
    // Due, over budget: what it holds is still delivered while it waits its turn.
    clock += 17 * 3600_000;
    await new Promise((r) => setTimeout(r, 1100));
    const first = await files.forInstance(a, [spec()], issuer);
    const waiting = await files.forInstance(b, [spec()], issuer);
    expect(first.pending).toEqual([]);
    expect(waiting.pending).toEqual(['/etc/app/tls']);
    expect(waiting.files).toHaveLength(2);
  });

  test('a failed issue keeps the certificate in hand while it is valid, and says why', async () => {
    const files = new CertificateFiles({ now: () => clock });
    const first = await files.forInstance(who, [spec()], issuer);
    clock += 17 * 3600_000;
    const failed = await files.forInstance(who, [spec()], async () => {
      throw new Error('S3 is down');
    });
    expect(failed.files).toEqual(first.files);
    expect(failed.problems).toEqual(['/etc/app/tls: issuing from certificates.web failed: S3 is down']);
  });
});

test('certificates.ca shapes the CA: subject rendered with cluster-wide values, and its ttl', async () => {
  const subject = caSubject({ cn: '{{ .Vars.Org }} {{ .Cluster.ID }} CA', organization: ['{{ .Vars.Org }}'], country: ['AU'], ttl: 48 }, 'c1', { Org: 'Acme' });
  expect(subject).toMatchObject({ commonName: 'Acme c1 CA', organization: ['Acme'], country: ['AU'], validityMs: 48 * 3600_000 });
  const now = Date.parse('2026-12-01T00:00:00Z');
  const ca = new X509Certificate(await createCaCertificate(generateKeyPairSync('ed25519').privateKey, 'c1', now, subject));
  expect(ca.subject.split('\n')).toEqual(['CN=Acme c1 CA', 'O=Acme', 'C=AU']);
  expect(ca.ca).toBe(true);
  expect(Date.parse(ca.validTo) - now).toBe(48 * 3600_000);
  // Without a ca entry: the project's default subject.
  expect(new X509Certificate(await createCaCertificate(generateKeyPairSync('ed25519').privateKey, 'c1', now)).subject.split('\n')).toEqual(['CN=nstance cluster c1 CA', 'O=nstance']);
});

test('IP addresses as a SAN takes them', () => {
  for (const ok of ['10.0.0.1', '::', '::1', 'fe80::1', '2001:db8:0:0:0:0:2:1', '::ffff:10.0.0.1', '1:2:3:4:5:6:7:8']) expect([ok, isIpAddress(ok)]).toEqual([ok, true]);
  for (const bad of ['10.0.0.256', '10.0.0', 'host', ':::', '1:2:3:4:5:6:7:8:9', '1::2::3', '1:2:3:4:5:6:7', '::ffff:10.0.0.300', '12345::1']) expect([bad, isIpAddress(bad)]).toEqual([bad, false]);
});
