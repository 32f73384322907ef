/**
 * The agent-certificate builder (@peculiar/asn1-x509 classes, node's Ed25519) against the
 * reference (@peculiar/x509 in x509.ts): for the same request, serial and time, the very same
 * certificate, byte for byte (both choose PrintableString or UTF8String the same way, and
 * Ed25519 signatures are deterministic), so subject, issuer, validity, every extension and its
 * criticality match too; and one that node (OpenSSL) reads and verifies against the CA.
 */
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { issueClientCertificate } from '../../adapters/pki/client-cert';
import { createCaCertificate, issueCertificate } from '../../adapters/pki/x509';

const now = Date.parse('2031-05-06T07:08:09.123Z');

test.each([
  ['with O, OU and a SAN URI', { organization: 'test', organizationalUnit: 'use1-az1', uris: ['nstance://test/use1-az1/default/web/web-abcdefghijkl'] }],
  ['with a name that needs escaping in a DN string', { organization: 'a,b=c', uris: [] }],
  ['with a name outside PrintableString (UTF8String)', { organization: 'équipe_1', uris: [] }],
  ['valid past 2049 (GeneralizedTime)', { organization: 'test', uris: ['nstance://x'], validityDays: 365 * 30 }],
])('%s: byte for byte what x509.ts issues', async (_what, extra) => {
  const caKey = generateKeyPairSync('ed25519').privateKey;
  const caPem = await createCaCertificate(caKey, 'test', now);
  const subject = generateKeyPairSync('ed25519').publicKey;
  const base = { caCertPem: caPem, caKey, publicKey: subject, commonName: 'web-abcdefghijkl', validityDays: 90, now, ...extra };
  const reference = await issueCertificate({ ...base, usage: 'client' });
  const referenceCert = new X509Certificate(reference.pem);
  const serialHex = referenceCert.serialNumber.length % 2 ? `0${referenceCert.serialNumber}` : referenceCert.serialNumber;
  const fast = issueClientCertificate({ ...base, serialHex });
  const fastCert = new X509Certificate(fast.pem);
  expect(fastCert.raw.toString('hex')).toBe(referenceCert.raw.toString('hex'));
  expect(fast).toEqual({ ...reference, pem: expect.any(String) });
  expect(fastCert.verify(new X509Certificate(caPem).publicKey)).toBe(true);
  expect(fastCert.checkIssued(new X509Certificate(caPem))).toBe(true);
});

test('what node (OpenSSL) reads from it: subject, issuer, serial, validity, SAN URI, EKU, key', async () => {
  const caKey = generateKeyPairSync('ed25519').privateKey;
  const caPem = await createCaCertificate(caKey, 'test', now);
  const publicKey = generateKeyPairSync('ed25519').publicKey;
  const uri = 'nstance://test/use1-az1/default/web/web-abcdefghijkl';
  const issued = issueClientCertificate({ caCertPem: caPem, caKey, publicKey, commonName: 'web-abcdefghijkl', organization: 'test', organizationalUnit: 'use1-az1', uris: [uri], validityDays: 90, now, serialHex: '0a1b2c3d' });
  const cert = new X509Certificate(issued.pem);
  expect(cert.subject).toBe('CN=web-abcdefghijkl\nOU=use1-az1\nO=test');
  expect(cert.issuer).toBe(new X509Certificate(caPem).subject);
  expect(cert.serialNumber).toBe('0A1B2C3D');
  expect(issued.serialNumber).toBe('0A1B2C3D');
  expect(new Date(cert.validFrom).toISOString()).toBe('2031-05-06T07:03:09.000Z');
  expect(new Date(cert.validTo).toISOString()).toBe('2031-08-04T07:08:09.000Z');
  expect(cert.subjectAltName).toBe(`URI:${uri}`);
  expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
  expect(cert.ca).toBe(false);
  expect(cert.publicKey.equals(publicKey)).toBe(true);
  expect(cert.verify(new X509Certificate(caPem).publicKey)).toBe(true);
});

test('the per-CA cache answers for the CA asked about, also after older CAs were dropped from it', async () => {
  const cas = await Promise.all(
    Array.from({ length: 10 }, async (_, i) => {
      const caKey = generateKeyPairSync('ed25519').privateKey;
      return { caKey, caPem: await createCaCertificate(caKey, `test-${i}`, now) };
    }),
  );
  const publicKey = generateKeyPairSync('ed25519').publicKey;
  for (const { caKey, caPem } of [...cas, cas[0]!, cas[9]!, cas[0]!]) {
    const cert = new X509Certificate(issueClientCertificate({ caCertPem: caPem, caKey, publicKey, commonName: 'web-1', validityDays: 90, now }).pem);
    const ca = new X509Certificate(caPem);
    expect(cert.checkIssued(ca)).toBe(true);
    expect(cert.verify(ca.publicKey)).toBe(true);
  }
});

test.each(['80', '00ff', 'ff01', 'abc', 'xyz1', '01'.repeat(21)])('a serial that is not a positive, minimal DER INTEGER of at most 20 bytes (%s) is refused', async (serialHex) => {
  const caKey = generateKeyPairSync('ed25519').privateKey;
  const caPem = await createCaCertificate(caKey, 'test', now);
  const publicKey = generateKeyPairSync('ed25519').publicKey;
  expect(() => issueClientCertificate({ caCertPem: caPem, caKey, publicKey, commonName: 'web-1', validityDays: 90, serialHex })).toThrow(/serialHex .* is not a positive, minimally encoded serial/);
});

test('a CA certificate that cannot be read is named as such', () => {
  const caKey = generateKeyPairSync('ed25519').privateKey;
  const publicKey = generateKeyPairSync('ed25519').publicKey;
  expect(() => issueClientCertificate({ caCertPem: 'not a certificate', caKey, publicKey, commonName: 'web-1', validityDays: 90 })).toThrow(/caCertPem is not a readable X.509 certificate/);
});

test('a random serial each time, well under a millisecond of signing each', async () => {
  const caKey = generateKeyPairSync('ed25519').privateKey;
  const caPem = await createCaCertificate(caKey, 'test');
  const publicKey = generateKeyPairSync('ed25519').publicKey;
  const serials = new Set(Array.from({ length: 200 }, () => issueClientCertificate({ caCertPem: caPem, caKey, publicKey, commonName: 'web-1', validityDays: 90 }).serialNumber));
  expect(serials.size).toBe(200);
});
