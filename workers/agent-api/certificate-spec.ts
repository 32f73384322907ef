/**
 * What a `certificate` file asks the cluster CA for, for one instance: its `certificates` entry
 * rendered with the instance's values (cn, organization, dns, ip, uri: the userdata template
 * language), `kind` as the extended key usage, `ttl`, and where the files go. Pure decisions:
 * the issuing (and remembering what was issued) is certificate-files.ts.
 *
 * Files, as Nstance lays them out: the certificate PEM at `<path>.crt` and the private key at
 * `<path>.key` (a path already ending in `.crt` or `.pem` is the certificate's own, and the key
 * goes beside it as `.key`). With `key: {source: agent}` the agent makes the key pair at the key
 * path (and `.pub` beside it, as Nstance's agent does; `key.name` renames the pair within the
 * same directory) and only its public key reaches the server. The CA chain is the CA certificate,
 * delivered to every instance as /etc/nstance/ca.crt.
 */
import { createHash } from 'node:crypto';
import { DEFAULT_CERTIFICATE_TTL_HOURS, isIpAddress, ttlMs, type CertificateConfig } from '../../common/config/certificates';
import type { FileConfig } from '../../common/config/files';
import { renderTemplate, type TemplateData } from '../../common/template';
import type { SubjectDetails } from '../../adapters/pki/x509';
import { certificatePaths } from '../../common/config/file-paths';

export { certificatePaths };

/** Reissued once this share of the time from issue to expiry has passed, as agent certificates are renewed. */
export const CERTIFICATE_FILE_RENEW_AFTER_SHARE = 2 / 3;

export interface CertificateFileSpec {
  /** The file's name in the template's `files` map. */
  path: string;
  /** Its `certificates` entry. */
  entry: string;
  usage: 'client' | 'server';
  commonName: string;
  details: SubjectDetails;
  dnsNames: string[];
  ips: string[];
  uris: string[];
  ttlMs: number;
  certPath: string;
  keyPath: string;
  /** Set when the key is made on the agent: where its public half is written. */
  agentKey?: { publicKeyPath: string };
  /** Digest of everything above: a change (a var in a SAN, a new ttl) means a new certificate. */
  digest: string;
}


/** Renders the entry for one instance; throws naming the field when a rendered value is unusable. */
export function certificateFileSpec(path: string, file: FileConfig, entryName: string, entry: CertificateConfig, data: TemplateData, where: string): CertificateFileSpec {
  const at = `certificates.${entryName}`;
  const one = (text: string, field: string) => renderTemplate(text, data, `${at}.${field} (for ${where})`).trim();
  // As Nstance: a SAN that renders empty is left out (a var may be optional per group).
  const list = (values: string[] | undefined, field: string) => (values ?? []).map((v, i) => one(v, `${field}[${i}]`)).filter((v) => v !== '');
  const ips = list(entry.ip, 'ip');
  ips.forEach((ip, i) => {
    if (!isIpAddress(ip)) throw new Error(`${at}.ip[${i}] rendered as "${ip}", which is not an IP address`);
  });
  const uris = list(entry.uri, 'uri');
  uris.forEach((uri, i) => {
    if (!/^[A-Za-z][A-Za-z0-9+.-]*:/.test(uri)) throw new Error(`${at}.uri[${i}] rendered as "${uri}", which is not an absolute URI`);
  });
  const commonName = entry.cn === undefined ? String((data.Instance as TemplateData | undefined)?.ID ?? '') : one(entry.cn, 'cn');
  if (commonName === '') throw new Error(`${at}.cn rendered empty: a certificate needs a common name`);
  const paths = certificatePaths(path, file);
  const spec: Omit<CertificateFileSpec, 'digest'> = {
    path,
    entry: entryName,
    usage: entry.kind,
    commonName,
    details: {
      organization: list(entry.organization, 'organization'),
      country: entry.country,
      province: entry.province,
      locality: entry.locality,
      street: entry.street,
      postalCode: entry.postal_code,
    },
    dnsNames: list(entry.dns, 'dns'),
    ips,
    uris,
    ttlMs: ttlMs(entry.ttl, DEFAULT_CERTIFICATE_TTL_HOURS),
    certPath: paths.certPath,
    keyPath: paths.keyPath,
    ...(paths.publicKeyPath ? { agentKey: { publicKeyPath: paths.publicKeyPath } } : {}),
  };
  return { ...spec, digest: createHash('sha256').update(JSON.stringify(spec)).digest('hex') };
}

/** When a certificate issued at `issuedAtMs`, valid until `notAfterMs`, is to be replaced. */
export function reissueAt(issued: { issuedAtMs: number; notAfterMs: number }): number {
  return issued.issuedAtMs + CERTIFICATE_FILE_RENEW_AFTER_SHARE * (issued.notAfterMs - issued.issuedAtMs);
}
