/**
 * Nstance's `certificates`: what the cluster CA issues for `certificate` files (`kind`
 * client|server, subject, SANs, `ttl`), and the `ca` entry that configures the CA itself. Strings
 * are rendered per instance as file strings are (common/config/file-text.ts), the CA's with
 * cluster-wide values only.
 */
import { z } from 'zod';
import { hasTemplate, templateReferences } from '../template';
import { parseDuration } from '../duration';
import { duration, isPlainObject, nonEmpty, strict } from './fields';
import { checkText } from './file-text';
import { describeValue, type IssueList } from './issues';
import { withHint } from './suggest';

/** The name of the `certificates` entry that configures the CA rather than a certificate. */
export const CA_ENTRY = 'ca';

const templatedList = z.array(nonEmpty()).superRefine((list, ctx) => list.forEach((text, i) => checkText(text, ctx, [i])));
const templatedText = nonEmpty().superRefine((text, ctx) => checkText(text, ctx, []));

/** Nstance's ttl is whole hours; a duration string ("720h", "30d") is accepted too. */
const ttl = z.union([z.number().int().min(1, { error: 'ttl is in hours: at least 1' }), duration({ min: '1h' })], {
  error: (iss) => `ttl is whole hours (e.g. 8760) or a duration (e.g. "30d"), got ${describeValue(iss.input)}`,
});

/** Nstance's defaults: a certificate lives a year, the CA ten. */
export const DEFAULT_CERTIFICATE_TTL_HOURS = 8760;
export const DEFAULT_CA_TTL_HOURS = 87600;

/** A `ttl` (hours, or a duration string) in milliseconds. */
export function ttlMs(ttl: number | string | undefined, defaultHours: number): number {
  if (ttl === undefined) return defaultHours * 3600_000;
  return typeof ttl === 'number' ? ttl * 3600_000 : parseDuration(ttl);
}

/** The subject's place attributes (C, ST, L, street, postalCode), taken as given (Nstance does not render them). */
const subjectPlaceFields = () => ({
  country: z.array(nonEmpty()).optional(),
  province: z.array(nonEmpty()).optional(),
  locality: z.array(nonEmpty()).optional(),
  street: z.array(nonEmpty()).optional(),
  postal_code: z.array(nonEmpty()).optional(),
});

export const certificateSchema = strict({
  kind: z.enum(['client', 'server']),
  cn: templatedText.optional(),
  organization: templatedList.optional(),
  dns: templatedList.optional(),
  ip: templatedList.optional(),
  uri: templatedList.optional(),
  ...subjectPlaceFields(),
  ttl: ttl.optional(),
}).superRefine((entry, ctx) => {
  // A literal (untemplated) SAN is checked now; a rendered one when the certificate is issued.
  entry.ip?.forEach((text, i) => {
    if (!hasTemplate(text) && !isIpAddress(text)) ctx.addIssue({ code: 'custom', path: ['ip', i], message: `invalid IP address ${describeValue(text)}: an IPv4 or IPv6 address, e.g. "10.0.0.1"` });
  });
  entry.uri?.forEach((text, i) => {
    if (!hasTemplate(text) && !/^[A-Za-z][A-Za-z0-9+.-]*:/.test(text)) ctx.addIssue({ code: 'custom', path: ['uri', i], message: `invalid URI ${describeValue(text)}: an absolute URI with a scheme, e.g. "spiffe://cluster/web"` });
  });
});

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** An IPv4 dotted quad or an IPv6 address (no zone). Pure, so config code stays free of node built-ins. */
export function isIpAddress(text: string): boolean {
  if (IPV4.test(text)) return true;
  const halves = text.split('::');
  if (halves.length > 2) return false;
  const groups = halves.flatMap((half) => (half === '' ? [] : half.split(':')));
  let count = groups.length;
  // An embedded IPv4 tail ("::ffff:10.0.0.1") stands for two groups.
  if (groups[groups.length - 1]?.includes('.')) {
    if (!IPV4.test(groups.pop() as string)) return false;
    count++;
  }
  if (!groups.every((g) => /^[0-9A-Fa-f]{1,4}$/.test(g))) return false;
  return halves.length === 2 ? count < 8 : count === 8;
}

/** The CA's subject fields (Nstance's `ca` entry is a certificates entry; these are the parts a CA can carry). */
const CA_SUBJECT_FIELDS = ['cn', 'organization', 'country', 'province', 'locality', 'street', 'postal_code'] as const;
/** Fields of a certificates entry that mean nothing for this project's CA: rejected by name rather than ignored. */
const CA_REJECTED: Record<string, string> = {
  kind: 'the CA signs certificates and is not used for TLS itself, so it has no client/server kind',
  dns: 'a CA certificate names no hosts (SANs belong on the certificates it issues)',
  ip: 'a CA certificate names no addresses (SANs belong on the certificates it issues)',
  uri: 'a CA certificate names no URIs (SANs belong on the certificates it issues)',
};

/**
 * `certificates.ca`: the CA's own subject and lifetime, used when the CA is first created (an existing CA
 * is never replaced). Its strings may use `{{ .Cluster.ID }}` and `{{ .Vars.X }}` (defaults.vars), as
 * Nstance renders them; nothing per instance exists when the CA is made.
 */
export const caEntrySchema = z
  .object({
    cn: nonEmpty().optional(),
    organization: z.array(nonEmpty()).optional(),
    ...subjectPlaceFields(),
    ttl: ttl.optional(),
  })
  .catchall(z.unknown())
  .superRefine((entry, ctx) => {
    const allowed: readonly string[] = [...CA_SUBJECT_FIELDS, 'ttl'];
    for (const field of Object.keys(entry)) {
      if (allowed.includes(field)) continue;
      const why = CA_REJECTED[field];
      ctx.addIssue({
        code: 'custom',
        path: [field],
        message: why ? `the ca entry takes no ${field}: ${why}; it takes ${allowed.join(', ')}` : `unknown field "${field}"${withHint(field, allowed)}; allowed fields: ${allowed.join(', ')}`,
      });
    }
    for (const field of CA_SUBJECT_FIELDS) {
      const value = entry[field];
      const texts = typeof value === 'string' ? [value] : Array.isArray(value) ? value : [];
      texts.forEach((text, i) => {
        for (const message of caTextProblems(text)) ctx.addIssue({ code: 'custom', path: typeof value === 'string' ? [field] : [field, i], message });
      });
    }
  });

/** The CA is made once for the cluster: only cluster-wide values can be rendered into it. */
function caTextProblems(text: string): string[] {
  let refs: string[][];
  try {
    refs = templateReferences(text);
  } catch (e) {
    return [(e as Error).message];
  }
  return refs
    .filter((ref) => !(ref.length === 2 && ((ref[0] === 'Cluster' && ref[1] === 'ID') || ref[0] === 'Vars')))
    .map((ref) => `{{ .${ref.join('.')} }}: the CA is made once for the whole cluster, so only {{ .Cluster.ID }} and {{ .Vars.<name> }} (from defaults.vars) can be used in it`);
}

export const certificatesSchema = z.object({ [CA_ENTRY]: caEntrySchema.optional() }).catchall(certificateSchema);

export type CertificateConfig = z.output<typeof certificateSchema>;
export interface CaEntryConfig {
  cn?: string;
  organization?: string[];
  country?: string[];
  province?: string[];
  locality?: string[];
  street?: string[];
  postal_code?: string[];
  /** Hours, or a duration string. */
  ttl?: number | string;
}

/** `{{ .Vars.X }}` in the ca entry: the CA is rendered with defaults.vars only, so X must be there. */
export function checkCaVars(config: { certificates?: Record<string, unknown>; defaults?: { vars?: Record<string, string> } }, list: IssueList): void {
  const ca = config.certificates?.[CA_ENTRY];
  if (!isPlainObject(ca)) return;
  const vars = config.defaults?.vars ?? {};
  for (const field of CA_SUBJECT_FIELDS) {
    const value = ca[field];
    const texts = typeof value === 'string' ? [value] : Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
    for (const text of texts) {
      let refs: string[][] = [];
      try {
        refs = templateReferences(text);
      } catch {
        /* reported by the schema */
      }
      for (const ref of refs) {
        if (ref[0] === 'Vars' && ref.length === 2 && !(ref[1] in vars)) list.add(['certificates', CA_ENTRY, field], `{{ .Vars.${ref[1]} }}: the CA is rendered with defaults.vars only, which has no var "${ref[1]}"`);
      }
    }
  }
}
