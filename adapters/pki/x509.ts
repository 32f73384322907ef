/**
 * Ed25519 certificates with @peculiar/x509 over Node's WebCrypto. Keys are held
 * as node KeyObjects everywhere else; they are converted to CryptoKeys only here.
 */
import 'reflect-metadata'; // @peculiar/x509 resolves its services through tsyringe, which needs it
import { createHash, createPublicKey, randomBytes, webcrypto, X509Certificate, type KeyObject } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ED25519 = { name: 'Ed25519' };
const DAY_MS = 24 * 3600 * 1000;
/** Backdating absorbs clock skew between the worker and the instance. */
const BACKDATE_MS = 5 * 60 * 1000;

type WebCryptoKey = Awaited<ReturnType<typeof webcrypto.subtle.importKey>>;

async function signingKey(key: KeyObject): Promise<WebCryptoKey> {
  return webcrypto.subtle.importKey('pkcs8', key.export({ type: 'pkcs8', format: 'der' }), ED25519, false, ['sign']);
}

async function verifyingKey(key: KeyObject): Promise<WebCryptoKey> {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return webcrypto.subtle.importKey('spki', pub.export({ type: 'spki', format: 'der' }), ED25519, true, ['verify']);
}

/** 128 random bits, top bit cleared so the DER INTEGER stays positive; hex, uppercase like node prints it. */
export function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] &= 0x7f;
  if (bytes[0] === 0) bytes[0] = 0x01;
  return bytes.toString('hex').toUpperCase();
}

export function publicKeyFingerprint(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return createHash('sha256').update(pub.export({ type: 'spki', format: 'der' })).digest('hex');
}

/** Subject attributes beyond CN/OU/O, as Nstance's certificates entries give them (each may repeat). */
export interface SubjectDetails {
  organization?: string[];
  country?: string[];
  province?: string[];
  locality?: string[];
  street?: string[];
  postalCode?: string[];
}

/** The CA's subject and lifetime (`certificates.ca`); unset parts take the defaults below. */
export interface CaSubject extends SubjectDetails {
  commonName?: string;
  validityMs?: number;
}

const CA_DEFAULT_VALIDITY_MS = 3650 * DAY_MS;

/** RFC 4519 attribute types: C, ST, L, street, postalCode (street and postalCode have no short name in @peculiar/x509). */
function jsonName(commonName: string, details: SubjectDetails, organizationalUnit?: string): x509.JsonName {
  const name: x509.JsonName = [{ CN: [commonName] }];
  if (organizationalUnit) name.push({ OU: [organizationalUnit] });
  const add = (type: string, values: string[] | undefined) => values?.forEach((value) => name.push({ [type]: [value] }));
  add('O', details.organization);
  add('C', details.country);
  add('ST', details.province);
  add('L', details.locality);
  add('2.5.4.9', details.street);
  add('2.5.4.17', details.postalCode);
  return name;
}

export async function createCaCertificate(caKey: KeyObject, clusterId: string, now = Date.now(), subject: CaSubject = {}): Promise<string> {
  const details: SubjectDetails = { ...subject, organization: subject.organization ?? ['nstance'] };
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: subject.commonName || Object.keys(subject).length > 0 ? jsonName(subject.commonName ?? `nstance cluster ${clusterId} CA`, details) : `CN=nstance cluster ${clusterId} CA, O=nstance`,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + (subject.validityMs ?? CA_DEFAULT_VALIDITY_MS)),
    signingAlgorithm: ED25519,
    keys: { privateKey: await signingKey(caKey), publicKey: await verifyingKey(caKey) },
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(await verifyingKey(caKey)),
    ],
  });
  return cert.toString('pem');
}

export interface IssueRequest {
  caCertPem: string;
  caKey: KeyObject;
  /** The subject's public key (the agent's, or the server's). */
  publicKey: KeyObject;
  commonName: string;
  /** Extra subject attributes, e.g. O=<cluster>, OU=<shard>. */
  organization?: string;
  organizationalUnit?: string;
  usage: 'client' | 'server';
  /** More subject attributes (a certificates entry's organization, country…); `organization` then lists every O. */
  subjectDetails?: SubjectDetails;
  dnsNames?: string[];
  ips?: string[];
  uris?: string[];
  validityDays: number;
  now?: number;
}

export interface IssuedCertificate {
  pem: string;
  serialNumber: string;
  notBefore: string;
  notAfter: string;
}

function rdn(value: string): string {
  // Distinguished-name values are escaped so an id can never inject another attribute.
  return value.replace(/([,+"\\<>;=])/g, '\\$1');
}

export async function issueCertificate(req: IssueRequest): Promise<IssuedCertificate> {
  if (req.publicKey.asymmetricKeyType !== 'ed25519') throw new Error('only Ed25519 public keys are accepted');
  const now = req.now ?? Date.now();
  const ca = new x509.X509Certificate(req.caCertPem);
  const serialNumber = randomSerial();
  const subject = [`CN=${rdn(req.commonName)}`];
  if (req.organizationalUnit) subject.push(`OU=${rdn(req.organizationalUnit)}`);
  if (req.organization) subject.push(`O=${rdn(req.organization)}`);
  const names: x509.JsonGeneralNames = [
    ...(req.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(req.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
    ...(req.uris ?? []).map((value) => ({ type: 'url' as const, value })),
  ];
  const notBefore = new Date(now - BACKDATE_MS);
  const notAfter = new Date(now + req.validityDays * DAY_MS);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber,
    subject: req.subjectDetails
      ? jsonName(req.commonName, { ...req.subjectDetails, organization: [...(req.organization ? [req.organization] : []), ...(req.subjectDetails.organization ?? [])] }, req.organizationalUnit)
      : subject.join(', '),
    issuer: ca.subject,
    notBefore,
    notAfter,
    signingAlgorithm: ED25519,
    publicKey: await verifyingKey(req.publicKey),
    signingKey: await signingKey(req.caKey),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([req.usage === 'client' ? x509.ExtendedKeyUsage.clientAuth : x509.ExtendedKeyUsage.serverAuth], false),
      await x509.AuthorityKeyIdentifierExtension.create(ca, false),
      ...(names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names, false)] : []),
    ],
  });
  const pem = cert.toString('pem');
  // Report the serial as node (and openssl) print it, so the certlog matches what a verifier sees.
  return { pem, serialNumber: new X509Certificate(pem).serialNumber, notBefore: notBefore.toISOString(), notAfter: notAfter.toISOString() };
}

/** True when `certPem` holds the public half of `key` (a CA cert written by another worker must match our key). */
export function certificateMatchesKey(certPem: string, key: KeyObject): boolean {
  try {
    return publicKeyFingerprint(new X509Certificate(certPem).publicKey) === publicKeyFingerprint(key);
  } catch {
    return false;
  }
}

/** SHA-256 of a certificate's DER, hex: the CA pin carried in registration nonces. */
export function certificateFingerprint(certPem: string): string {
  return createHash('sha256').update(new X509Certificate(certPem).raw).digest('hex');
}
