import { createPublicKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { certLogKey, certLogStamp } from '../../adapters/pki/certlog';
import { certificateMatchesKey, createCaCertificate, issueCertificate } from '../../adapters/pki/x509';

describe('certificate log keys', () => {
  test('shard/<shard>/certlog/<tenant>.<yyyyMMddHHmmssSSS>.<id>.json in UTC', () => {
    const at = new Date('2026-03-04T05:06:07.089Z');
    expect(certLogStamp(at)).toBe('20260304050607089');
    expect(certLogKey('use1-az1', 'default', at, 'web-0abc')).toBe('shard/use1-az1/certlog/default.20260304050607089.web-0abc.json');
  });

  test('an invalid time is refused rather than written as NaN', () => {
    expect(() => certLogStamp(new Date('nope'))).toThrow(/valid time/);
  });
});

describe('Ed25519 certificates', () => {
  test('the CA is self-signed for its key; issued client certs carry CN, SAN URI, the serial we log, and verify against the CA', async () => {
    const ca = generateKeyPairSync('ed25519').privateKey;
    const caPem = await createCaCertificate(ca, 'c1');
    const caCert = new X509Certificate(caPem);
    expect(caCert.ca).toBe(true);
    expect(caCert.verify(createPublicKey(ca))).toBe(true);
    expect(certificateMatchesKey(caPem, ca)).toBe(true);
    expect(certificateMatchesKey(caPem, generateKeyPairSync('ed25519').privateKey)).toBe(false);

    const agent = generateKeyPairSync('ed25519');
    const issued = await issueCertificate({
      caCertPem: caPem,
      caKey: ca,
      publicKey: agent.publicKey,
      commonName: 'web-0abc',
      organization: 'c1',
      organizationalUnit: 's1',
      usage: 'client',
      uris: ['nstance://c1/s1/default/web/web-0abc'],
      validityDays: 90,
    });
    const cert = new X509Certificate(issued.pem);
    expect(cert.subject).toContain('CN=web-0abc');
    expect(cert.subjectAltName).toBe('URI:nstance://c1/s1/default/web/web-0abc');
    expect(cert.serialNumber).toBe(issued.serialNumber);
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.ca).toBe(false);
    // Distinct serials for distinct issuances.
    const again = await issueCertificate({ caCertPem: caPem, caKey: ca, publicKey: agent.publicKey, commonName: 'x', usage: 'client', validityDays: 1 });
    expect(again.serialNumber).not.toBe(issued.serialNumber);
  });

  test('a common name cannot smuggle extra subject attributes', async () => {
    const ca = generateKeyPairSync('ed25519').privateKey;
    const caPem = await createCaCertificate(ca, 'c1');
    const issued = await issueCertificate({ caCertPem: caPem, caKey: ca, publicKey: generateKeyPairSync('ed25519').publicKey, commonName: 'a, O=evil', usage: 'client', validityDays: 1 });
    expect(new X509Certificate(issued.pem).subject).not.toMatch(/^O=evil$/m);
  });
});
