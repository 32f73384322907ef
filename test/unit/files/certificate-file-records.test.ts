/**
 * Issued certificate files kept for the next leader: a new leader (fresh memory) serves what was
 * issued, issuing nothing; a server-made key is stored sealed under the CA key and opens only for
 * its own instance and file; records another CA signed, or tampered with, are ignored.
 */
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { ObjectStore, StoredObject, WriteCondition } from '../../../adapters/s3/objects';
import { WriteConflictError } from '../../../adapters/s3/objects';
import { createCaCertificate, issueCertificate } from '../../../adapters/pki/x509';
import type { CertificateConfig } from '../../../common/config/certificates';
import type { FileConfig } from '../../../common/config/files';
import type { TemplateData } from '../../../common/template';
import { CertificateFileRecords } from '../../../workers/agent-api/certificate-file-records';
import { s3Keys } from '../../../common/names';
import { CertificateFiles, type CertificateFilePersistence, type FileCertificateIssuer } from '../../../workers/agent-api/certificate-files';
import { certificateFileSpec } from '../../../workers/agent-api/certificate-spec';

/** An ObjectStore in memory, with S3's conditional writes. */
class MemoryObjects {
  readonly bucket = 'b';
  readonly objects = new Map<string, StoredObject>();
  private version = 0;
  async read(key: string): Promise<StoredObject | undefined> {
    return this.objects.get(key);
  }
  async write(key: string, text: string, condition: WriteCondition): Promise<string> {
    const current = this.objects.get(key);
    if ('absent' in condition ? current !== undefined : current?.etag !== condition.etag) throw new WriteConflictError(key, `conflict on ${key}`);
    const etag = `"${++this.version}"`;
    this.objects.set(key, { text, etag });
    return etag;
  }
}

const DATA: TemplateData = { Instance: { ID: 'web-abc', Kind: 'web', Type: 't3.micro' }, Vars: {}, Cluster: { ID: 'c1' }, Shard: { ID: 's1' }, Group: 'web', Tenant: 'default', Server: {}, Image: {} };
const ENTRY: CertificateConfig = { kind: 'server', cn: '{{ .Instance.ID }}', ttl: 24 };
const serverSpec = certificateFileSpec('/etc/app/tls', { kind: 'certificate', template: 'web' }, 'web', ENTRY, DATA, 'templates.web.files./etc/app/tls');
const AGENT_FILE: FileConfig = { kind: 'certificate', template: 'web', key: { source: 'agent' } };
const agentSpec = certificateFileSpec('/etc/app/client', AGENT_FILE, 'web', { kind: 'client' }, DATA, 'templates.web.files./etc/app/client');
const who = { instanceId: 'web-abc', tenant: 'default', group: 'web' };
const clock = Date.parse('2026-12-01T00:00:00Z');

async function cluster() {
  const caKey = generateKeyPairSync('ed25519').privateKey;
  const caCertPem = await createCaCertificate(caKey, 'c1', clock);
  let issued = 0;
  const issuer: FileCertificateIssuer = async ({ spec, publicKey, now }) => {
    issued++;
    const cert = await issueCertificate({ caCertPem, caKey, publicKey, commonName: spec.commonName, usage: spec.usage, subjectDetails: spec.details, dnsNames: spec.dnsNames, ips: spec.ips, uris: spec.uris, validityDays: spec.ttlMs / 86_400_000, now });
    return { certPem: cert.pem, serialNumber: cert.serialNumber, notAfter: cert.notAfter };
  };
  return { caKey, caCertPem, issuer, issued: () => issued };
}

function persistence(records: CertificateFileRecords): CertificateFilePersistence {
  return { load: (id) => records.load(id), save: (id, path, issued) => records.save(id, path, issued) };
}

const records = (objects: MemoryObjects, ca: { caKey: KeyObject; caCertPem: string }) =>
  new CertificateFileRecords({ objects: objects as unknown as ObjectStore, shard: 's1', caKey: ca.caKey, caCertPem: ca.caCertPem });

test('a new leader serves the certificates the last one issued, server key and agent key alike, and issues none', async () => {
  const ca = await cluster();
  const objects = new MemoryObjects();
  const first = new CertificateFiles({ now: () => clock });
  const agentKey = generateKeyPairSync('ed25519');
  first.submitPublicKey(who.instanceId, '/etc/app/client', agentKey.publicKey);
  const before = await first.forInstance(who, [serverSpec, agentSpec], ca.issuer, persistence(records(objects, ca)));
  expect(ca.issued()).toBe(2);
  const stored = objects.objects.get(s3Keys.certificateFiles('s1', who.instanceId))?.text ?? '';
  expect(stored).not.toContain('PRIVATE KEY');
  expect(JSON.parse(stored).files['/etc/app/client']).toMatchObject({ agentKey: true });

  // Fresh memory (a new leader process), the same bucket and CA: the same files, no issue, no key request.
  const next = new CertificateFiles({ now: () => clock + 3600_000 });
  const look = await next.forInstance(who, [serverSpec, agentSpec], undefined, { load: (id) => records(objects, ca).load(id) });
  expect(look.pending).toEqual([]);
  expect(look.keyRequests).toEqual([]);
  const after = await next.forInstance(who, [serverSpec, agentSpec], ca.issuer, persistence(records(objects, ca)));
  expect(ca.issued()).toBe(2);
  expect(after.files.sort((a, b) => a.path.localeCompare(b.path))).toEqual(before.files.sort((a, b) => a.path.localeCompare(b.path)));
  expect(after.keyRequests).toEqual([]);

  // Still reissued when due: the restored issue time counts, not the restore.
  const late = new CertificateFiles({ now: () => clock + 17 * 3600_000 });
  await late.forInstance(who, [serverSpec], ca.issuer, persistence(records(objects, ca)));
  expect(ca.issued()).toBe(3);
});

test('records under another CA, a sealed key moved to another instance, or a certificate for another key are ignored (issued again)', async () => {
  const ca = await cluster();
  const objects = new MemoryObjects();
  await new CertificateFiles({ now: () => clock }).forInstance(who, [serverSpec], ca.issuer, persistence(records(objects, ca)));
  const other = await cluster();
  expect((await records(objects, other).load(who.instanceId)).size).toBe(0);

  const [key, object] = [...objects.objects][0];
  const moved = JSON.parse(object.text) as { instanceId: string; files: Record<string, { publicKeyPem: string }> };
  moved.instanceId = 'web-xyz';
  objects.objects.set(s3Keys.certificateFiles('s1', 'web-xyz'), { text: JSON.stringify(moved), etag: '"moved"' });
  expect((await records(objects, ca).load('web-xyz')).size).toBe(0);

  const swapped = JSON.parse(object.text) as typeof moved;
  swapped.files['/etc/app/tls'].publicKeyPem = createPublicKey(generateKeyPairSync('ed25519').privateKey).export({ type: 'spki', format: 'pem' }) as string;
  objects.objects.set(key, { text: JSON.stringify(swapped), etag: '"swapped"' });
  expect((await records(objects, ca).load(who.instanceId)).size).toBe(0);
  expect((await records(objects, ca).load('web-none')).size).toBe(0);
});

test('two writers of one instance (an old leader and a new one, or two files at once) lose nothing: a conflict is read, merged and written again', async () => {
  const ca = await cluster();
  const objects = new MemoryObjects();
  const a = records(objects, ca);
  const b = records(objects, ca);
  await a.load(who.instanceId);
  await b.load(who.instanceId);
  const files = new CertificateFiles({ now: () => clock });
  await files.forInstance(who, [serverSpec], ca.issuer, persistence(a));
  const agentKey = generateKeyPairSync('ed25519');
  files.submitPublicKey(who.instanceId, '/etc/app/client', agentKey.publicKey);
  // b read the object while it was absent: its write conflicts, then merges a's.
  await files.forInstance(who, [agentSpec], ca.issuer, persistence(b));
  expect([...(await records(objects, ca).load(who.instanceId)).keys()].sort()).toEqual(['/etc/app/client', '/etc/app/tls']);
});
