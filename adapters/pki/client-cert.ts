/**
 * Agent client certificates, encoded directly in DER and signed with node's Ed25519.
 * x509.ts (@peculiar/x509) spends ~15 ms of CPU per certificate building, re-parsing and
 * re-checking it; at a fleet's registration burst that was most of the agent API's CPU.
 * An agent certificate has one fixed shape, so it is written here field by field (the
 * issuer name and key identifier are taken once per CA from its certificate), byte for
 * byte what issueCertificate produces for the same request: test/unit/pki-client-cert.test.ts
 * compares the two. Server certificates (a few per worker) still go through x509.ts.
 */
import { createHash, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import type { IssuedCertificate } from './x509';

const DAY_MS = 24 * 3600 * 1000;
/** As x509.ts: backdating absorbs clock skew between the worker and the instance. */
const BACKDATE_MS = 5 * 60 * 1000;

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
  /** Hex, top bit clear (tests pass one to compare with x509.ts); random otherwise. */
  serialHex?: string;
}

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
}

const seq = (...parts: Buffer[]) => tlv(0x30, ...parts);

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number) as [number, number, ...number[]];
  const out = [40 * a + b];
  for (const n of rest) {
    const chunk = [n & 0x7f];
    for (let v = n >>> 7; v > 0; v >>>= 7) chunk.unshift((v & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

function time(at: Date): Buffer {
  const iso = at.toISOString();
  const digits = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  const year = at.getUTCFullYear();
  // RFC 5280: UTCTime through 2049, GeneralizedTime from 2050.
  return year >= 1950 && year < 2050 ? tlv(0x17, Buffer.from(digits.slice(2), 'ascii')) : tlv(0x18, Buffer.from(digits, 'ascii'));
}

const ED25519 = seq(oid('1.3.101.112'));
const EXTENSION = {
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  authorityKeyIdentifier: '2.5.29.35',
  subjectKeyIdentifier: '2.5.29.14',
  subjectAltName: '2.5.29.17',
};

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [Buffer.from([0x01, 0x01, 0xff])] : []), tlv(0x04, value));
}

/** X.680's PrintableString characters: a value made only of them is encoded as one (as @peculiar/x509 does), else as UTF8String. */
const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

function attribute(type: string, value: string): Buffer {
  const encoded = PRINTABLE.test(value) ? tlv(0x13, Buffer.from(value, 'ascii')) : tlv(0x0c, Buffer.from(value, 'utf8'));
  return tlv(0x31, seq(oid(type), encoded));
}

/** The TLVs directly inside a constructed DER value. */
function children(der: Buffer): Buffer[] {
  const out: Buffer[] = [];
  const header = (at: number): { start: number; end: number } => {
    const first = der[at + 1] as number;
    if (first < 0x80) return { start: at + 2, end: at + 2 + first };
    const count = first & 0x7f;
    let n = 0;
    for (let i = 0; i < count; i++) n = n * 256 + (der[at + 2 + i] as number);
    return { start: at + 2 + count, end: at + 2 + count + n };
  };
  const outer = header(0);
  for (let at = outer.start; at < outer.end; ) {
    const { end } = header(at);
    out.push(der.subarray(at, end));
    at = end;
  }
  return out;
}

interface IssuerParts {
  name: Buffer;
  keyIdentifier: Buffer;
}

const issuers = new Map<string, IssuerParts>();

/** The CA's subject (our issuer field, as its exact bytes) and its key identifier, read once per CA. */
function issuerOf(caCertPem: string): IssuerParts {
  const cached = issuers.get(caCertPem);
  if (cached) return cached;
  const ca = new X509Certificate(caCertPem);
  const tbs = children(children(ca.raw)[0] as Buffer);
  const fields = (tbs[0] as Buffer)[0] === 0xa0 ? tbs.slice(1) : tbs;
  // serial, signature, issuer, validity, subject, spki, [extensions]
  const name = fields[4] as Buffer;
  let keyIdentifier: Buffer | undefined;
  const extensions = tbs.find((f) => f[0] === 0xa3);
  for (const ext of extensions ? children(children(extensions)[0] as Buffer) : []) {
    const [id, ...rest] = children(ext);
    if (id?.equals(oid(EXTENSION.subjectKeyIdentifier))) keyIdentifier = children(rest[rest.length - 1] as Buffer)[0]?.subarray(2);
  }
  // A CA without one (not ours): the SHA-1 of its public key, RFC 5280's method 1.
  keyIdentifier ??= createHash('sha1').update((ca.publicKey.export({ type: 'spki', format: 'der' }) as Buffer).subarray(12)).digest();
  const parts = { name, keyIdentifier };
  issuers.set(caCertPem, parts);
  return parts;
}

function randomSerialHex(): string {
  const bytes = randomBytes(16);
  bytes[0] &= 0x7f;
  if (bytes[0] === 0) bytes[0] = 0x01;
  return bytes.toString('hex');
}

/** A client certificate (EKU clientAuth, SAN URIs) for `publicKey`, signed by the CA. */
export function issueClientCertificate(req: ClientCertificateRequest): IssuedCertificate {
  if (req.publicKey.asymmetricKeyType !== 'ed25519') throw new Error('only Ed25519 public keys are accepted');
  const now = req.now ?? Date.now();
  const issuer = issuerOf(req.caCertPem);
  const notBefore = new Date(now - BACKDATE_MS);
  const notAfter = new Date(now + req.validityDays * DAY_MS);
  const subject = seq(
    attribute('2.5.4.3', req.commonName),
    ...(req.organizationalUnit ? [attribute('2.5.4.11', req.organizationalUnit)] : []),
    ...(req.organization ? [attribute('2.5.4.10', req.organization)] : []),
  );
  const uris = req.uris ?? [];
  const extensions = [
    extension(EXTENSION.basicConstraints, true, seq()),
    // digitalSignature: bit 0, seven unused bits.
    extension(EXTENSION.keyUsage, true, Buffer.from([0x03, 0x02, 0x07, 0x80])),
    extension(EXTENSION.extKeyUsage, false, seq(oid('1.3.6.1.5.5.7.3.2'))),
    extension(EXTENSION.authorityKeyIdentifier, false, seq(tlv(0x80, issuer.keyIdentifier))),
    ...(uris.length > 0 ? [extension(EXTENSION.subjectAltName, false, seq(...uris.map((u) => tlv(0x86, Buffer.from(u, 'ascii')))))] : []),
  ];
  const serialHex = (req.serialHex ?? randomSerialHex()).toUpperCase();
  const tbs = seq(
    tlv(0xa0, tlv(0x02, Buffer.from([0x02]))),
    tlv(0x02, Buffer.from(serialHex, 'hex')),
    ED25519,
    issuer.name,
    seq(time(notBefore), time(notAfter)),
    subject,
    req.publicKey.export({ type: 'spki', format: 'der' }) as Buffer,
    tlv(0xa3, seq(...extensions)),
  );
  const signature = sign(null, tbs, req.caKey);
  const der = seq(tbs, ED25519, tlv(0x03, Buffer.from([0x00]), signature));
  const pem = `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----`;
  // As node and openssl print it: the serial's bytes in upper-case hex (its first byte is never 0).
  return { pem, serialNumber: serialHex, notBefore: notBefore.toISOString(), notAfter: notAfter.toISOString() };
}
