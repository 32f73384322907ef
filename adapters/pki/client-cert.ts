/**
 * Agent client certificates, built with @peculiar/asn1-x509's certificate classes and signed
 * with node's Ed25519. x509.ts (@peculiar/x509, the same project's higher layer) spends
 * ~15 ms of CPU per certificate re-parsing the CA, importing keys into WebCrypto and
 * re-checking what it built; at a fleet's registration burst that was most of the agent
 * API's CPU. Here the TBSCertificate is assembled from the ASN.1 classes that layer uses
 * underneath, what never changes (the three fixed extensions) is built once, what depends
 * only on the CA (issuer name, AuthorityKeyIdentifier) once per CA, and node signs the TBS
 * directly. For the same request, serial and time the result is byte for byte what
 * issueCertificate produces: test/unit/pki-client-cert.test.ts compares the two.
 * Server certificates (a few per worker) still go through x509.ts.
 */
import { createHash, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { AsnConvert, AsnSerializer, OctetString, type IAsnConvertible } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  AuthorityKeyIdentifier,
  BasicConstraints,
  Certificate,
  ExtendedKeyUsage,
  Extension,
  Extensions,
  GeneralName,
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_subjectAltName,
  id_ce_subjectKeyIdentifier,
  id_kp_clientAuth,
  KeyIdentifier,
  KeyUsage,
  KeyUsageFlags,
  Name,
  RelativeDistinguishedName,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
} from '@peculiar/asn1-x509';
import type { IssuedCertificate } from './x509';

const DAY_MS = 24 * 3600 * 1000;
/** As x509.ts: backdating absorbs clock skew between the worker and the instance. */
const BACKDATE_MS = 5 * 60 * 1000;
/** RFC 8410: Ed25519's AlgorithmIdentifier has no parameters. */
const ID_ED25519 = '1.3.101.112';
const ATTRIBUTE = { commonName: '2.5.4.3', organizationalUnit: '2.5.4.11', organization: '2.5.4.10' };
/** RFC 5280 §4.1.2.2: at most 20 octets; positive and minimally encoded, so no leading 0x00 (and top bit clear). */
const SERIAL_HEX = /^(?:0[1-9a-f]|[1-7][0-9a-f])(?:[0-9a-f]{2}){0,19}$/i;
/** A handful of CAs over a process's life (rotation); the bound only guards against a caller passing endless ones. */
const MAX_CACHED_ISSUERS = 8;

export interface ClientCertificateRequest {
  caCertPem: string;
  caKey: KeyObject;
  publicKey: KeyObject;
  commonName: string;
  organization?: string;
  organizationalUnit?: string;
  uris?: string[];
  validityDays: number;
  now?: number;
  /** Hex, 1 to 20 bytes, first byte 01..7F (tests pass one to compare with x509.ts); random otherwise. */
  serialHex?: string;
}

function extension(extnID: string, critical: boolean, value: unknown): Extension {
  return new Extension({ extnID, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });
}

/** The same for every agent certificate: an end entity that signs (TLS client auth) and nothing else. */
const FIXED_EXTENSIONS = [
  extension(id_ce_basicConstraints, true, new BasicConstraints({ cA: false })),
  extension(id_ce_keyUsage, true, new KeyUsage(KeyUsageFlags.digitalSignature)),
  extension(id_ce_extKeyUsage, false, new ExtendedKeyUsage([id_kp_clientAuth])),
];

const ed25519 = () => new AlgorithmIdentifier({ algorithm: ID_ED25519 });

/** X.680's PrintableString characters: a value made only of them is encoded as one (as @peculiar/x509 does), else as UTF8String. */
const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

function rdn(type: string, value: string): RelativeDistinguishedName {
  const encoded = new AttributeValue(PRINTABLE.test(value) ? { printableString: value } : { utf8String: value });
  return new RelativeDistinguishedName([new AttributeTypeAndValue({ type, value: encoded })]);
}

interface Issuer {
  /** The CA's subject as parsed from its certificate: re-encoded, it gives back the CA's own bytes. */
  name: Name;
  authorityKeyIdentifier: Extension;
}

const issuers = new Map<string, Issuer>();

/** The CA's subject (our issuer field) and our AuthorityKeyIdentifier, read once per CA. */
function issuerOf(caCertPem: string): Issuer {
  const cached = issuers.get(caCertPem);
  if (cached) return cached;
  let ca: Certificate;
  try {
    ca = AsnConvert.parse(new X509Certificate(caCertPem).raw, Certificate);
  } catch (err) {
    throw new Error(`caCertPem is not a readable X.509 certificate: ${(err as Error).message}`);
  }
  const tbs = ca.tbsCertificate;
  const ski = tbs.extensions?.find((e) => e.extnID === id_ce_subjectKeyIdentifier);
  const keyIdentifier = ski
    ? AsnConvert.parse(ski.extnValue.buffer, SubjectKeyIdentifier).buffer
    : // A CA without one (not ours): RFC 5280 §4.2.1.2 method 1, the SHA-1 of its public key's bits.
      createHash('sha1').update(Buffer.from(tbs.subjectPublicKeyInfo.subjectPublicKey)).digest();
  const issuer = {
    name: tbs.subject,
    authorityKeyIdentifier: extension(id_ce_authorityKeyIdentifier, false, new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(keyIdentifier) })),
  };
  if (issuers.size >= MAX_CACHED_ISSUERS) issuers.delete(issuers.keys().next().value as string);
  issuers.set(caCertPem, issuer);
  return issuer;
}

function randomSerialHex(): string {
  const bytes = randomBytes(16);
  bytes[0] &= 0x7f;
  if (bytes[0] === 0) bytes[0] = 0x01;
  return bytes.toString('hex');
}

function subjectPublicKeyInfo(publicKey: KeyObject): SubjectPublicKeyInfo {
  if (publicKey.asymmetricKeyType !== 'ed25519') throw new Error('only Ed25519 public keys are accepted');
  // RFC 8037: an OKP JWK's x is the raw 32-byte public key, what SubjectPublicKeyInfo carries for Ed25519.
  const { x } = publicKey.export({ format: 'jwk' });
  return new SubjectPublicKeyInfo({ algorithm: ed25519(), subjectPublicKey: arrayBuffer(Buffer.from(x as string, 'base64url')) });
}

/** The asn1 classes hold ArrayBuffers; a Buffer may be a view into node's shared pool, so its bytes are copied out. */
function arrayBuffer(bytes: Buffer): ArrayBuffer {
  return Uint8Array.from(bytes).buffer;
}

type AsnBlock = ReturnType<typeof AsnSerializer.toASN>;

/**
 * A TBSCertificate that converts itself to ASN.1 once: the Certificate around it then writes the
 * block that was signed instead of converting the whole TBS a second time (a third of the work).
 */
class TbsEncodedOnce extends TBSCertificate implements IAsnConvertible {
  #asn?: AsnBlock;

  toASN(): AsnBlock {
    // Converted as a plain TBSCertificate: asn1-schema would otherwise call this very method again.
    return (this.#asn ??= AsnSerializer.toASN(new TBSCertificate(this)));
  }

  fromASN(): this {
    throw new Error('TbsEncodedOnce is only for writing certificates');
  }

  toSchema(): never {
    throw new Error('TbsEncodedOnce is only for writing certificates');
  }
}

function toPem(der: ArrayBuffer): string {
  const lines = Buffer.from(der).toString('base64').match(/.{1,64}/g) as string[];
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----`;
}

/** A client certificate (EKU clientAuth, SAN URIs) for `publicKey`, signed by the CA. */
export function issueClientCertificate(req: ClientCertificateRequest): IssuedCertificate {
  const spki = subjectPublicKeyInfo(req.publicKey);
  const serialHex = (req.serialHex ?? randomSerialHex()).toUpperCase();
  if (!SERIAL_HEX.test(serialHex)) throw new Error(`serialHex ${serialHex} is not a positive, minimally encoded serial of at most 20 bytes`);
  const now = req.now ?? Date.now();
  const issuer = issuerOf(req.caCertPem);
  const notBefore = new Date(now - BACKDATE_MS);
  const notAfter = new Date(now + req.validityDays * DAY_MS);
  const uris = req.uris ?? [];
  const tbsCertificate = new TbsEncodedOnce({
    version: Version.v3,
    serialNumber: arrayBuffer(Buffer.from(serialHex, 'hex')),
    signature: ed25519(),
    issuer: issuer.name,
    // Time picks UTCTime through 2049 and GeneralizedTime from 2050 (RFC 5280 §4.1.2.5).
    validity: new Validity({ notBefore, notAfter }),
    subject: new Name([
      rdn(ATTRIBUTE.commonName, req.commonName),
      ...(req.organizationalUnit ? [rdn(ATTRIBUTE.organizationalUnit, req.organizationalUnit)] : []),
      ...(req.organization ? [rdn(ATTRIBUTE.organization, req.organization)] : []),
    ]),
    subjectPublicKeyInfo: spki,
    extensions: new Extensions([
      ...FIXED_EXTENSIONS,
      issuer.authorityKeyIdentifier,
      ...(uris.length > 0 ? [extension(id_ce_subjectAltName, false, new SubjectAlternativeName(uris.map((uri) => new GeneralName({ uniformResourceIdentifier: uri }))))] : []),
    ]),
  });
  const tbs = Buffer.from(AsnConvert.serialize(tbsCertificate));
  // Ed25519 signs the message itself (no digest), hence no algorithm argument.
  const signatureValue = sign(null, tbs, req.caKey);
  const certificate = new Certificate({ tbsCertificate, signatureAlgorithm: ed25519(), signatureValue: arrayBuffer(signatureValue) });
  // As node and openssl print it: the serial's bytes in upper-case hex (its first byte is never 0).
  return { pem: toPem(AsnConvert.serialize(certificate)), serialNumber: serialHex, notBefore: notBefore.toISOString(), notAfter: notAfter.toISOString() };
}
