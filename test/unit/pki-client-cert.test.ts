/**
 * The fast agent-certificate encoder against the reference (@peculiar/x509 in x509.ts):
 * for the same request, serial and time, the very same certificate, byte for byte
 * (Ed25519 signatures are deterministic), and one that verifies against the CA.
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

test('a random serial each time, well under a millisecond of signing each', async () => {
  const caKey = generateKeyPairSync('ed25519').privateKey;
  const caPem = await createCaCertificate(caKey, 'test');
  const publicKey = generateKeyPairSync('ed25519').publicKey;
  const serials = new Set(Array.from({ length: 200 }, () => issueClientCertificate({ caCertPem: caPem, caKey, publicKey, commonName: 'web-1', validityDays: 90 }).serialNumber));
  expect(serials.size).toBe(200);
});
