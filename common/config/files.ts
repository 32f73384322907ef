/**
 * Nstance's `files` (per template: what each instance receives) and `certificates` (what the
 * cluster CA issues for `certificate` files; the `ca` entry configures the CA itself). Field
 * names are Nstance's; `mode` is ours (Nstance writes every file 0600). Strings in `source`
 * and `template` are rendered per instance with the userdata template language, minus
 * `{{ .Nonce }}` (the registration secret is for userdata only).
 */
import { z } from 'zod';
import { hasTemplate, templateReferences } from '../template';
import { templateTextProblems } from './args';
import { parseDuration } from '../duration';
import { duration, isPlainObject, nonEmpty, strict } from './fields';
import { describeValue, type ConfigPath, type IssueList } from './issues';
import { keyNameSchema } from './file-paths';
import { withHint } from './suggest';

export const FILE_KINDS = ['secret', 'storage', 'certificate', 'env', 'json', 'string'] as const;
export type FileKind = (typeof FILE_KINDS)[number];

/** The name of the `certificates` entry that configures the CA rather than a certificate. */
export const CA_ENTRY = 'ca';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

type Ctx = z.core.$RefinementCtx;

/** Template problems of one string, plus the one thing files may not use: the nonce. */
function fileTextProblems(text: string): string[] {
  const problems = templateTextProblems(text);
  try {
    if (templateReferences(text).some((ref) => ref[0] === 'Nonce')) {
      problems.push('{{ .Nonce }} is the registration secret and only goes in userdata; files may not contain it');
    }
  } catch {
    /* syntax problems are already listed */
  }
  return problems;
}

function checkText(text: string, ctx: Ctx, path: (string | number)[]): void {
  for (const message of fileTextProblems(text)) ctx.addIssue({ code: 'custom', path, message });
}

function checkJsonStrings(value: unknown, ctx: Ctx, path: (string | number)[]): void {
  if (typeof value === 'string') checkText(value, ctx, path);
  else if (Array.isArray(value)) value.forEach((v, i) => checkJsonStrings(v, ctx, [...path, i]));
  else if (isPlainObject(value)) for (const [k, v] of Object.entries(value)) checkJsonStrings(v, ctx, [...path, k]);
}

/** A file path on the instance: absolute, or relative to the agent's files directory; never climbing out. */
function filePathProblem(name: string): string | undefined {
  if (name === '' || name.endsWith('/') || name.includes('\0')) return `invalid file name ${describeValue(name)}: name a file, e.g. "/etc/app/token" or "app/token"`;
  if (name.split('/').some((part) => part === '..' || part === '.')) return `invalid file name ${describeValue(name)}: no "." or ".." parts`;
  return undefined;
}

const modeSchema = z.string().superRefine((mode, ctx) => {
  if (!/^0?[0-7]{3}$/.test(mode)) return void ctx.addIssue({ code: 'custom', message: `invalid mode ${describeValue(mode)}: an octal permission such as "0600" or "0644"` });
  const bits = parseInt(mode, 8);
  if (bits & 0o002) ctx.addIssue({ code: 'custom', message: `mode ${mode} lets any user write the file: drop the others' write bit (e.g. "0644")` });
  if ((bits & 0o400) === 0) ctx.addIssue({ code: 'custom', message: `mode ${mode} does not let the owner read the file` });
});

export const fileSchema = strict({
  kind: z.enum(FILE_KINDS),
  source: nonEmpty().optional(),
  template: z.unknown().optional(),
  key: strict({ source: z.literal('agent'), name: keyNameSchema.optional() }).optional(),
  mode: modeSchema.optional(),
}).superRefine((file, ctx) => {
  const forbid = (field: 'source' | 'template' | 'key', why: string) => {
    if (file[field] !== undefined) ctx.addIssue({ code: 'custom', path: [field], message: `a ${file.kind} file takes no ${field}: ${why}` });
  };
  const need = (field: 'source' | 'template', what: string) => {
    if (file[field] === undefined) ctx.addIssue({ code: 'custom', path: [field], message: `a ${file.kind} file needs ${field}: ${what}` });
  };
  switch (file.kind) {
    case 'secret':
    case 'storage':
      need('source', file.kind === 'secret' ? 'the secret name under cluster.secrets.prefix, e.g. "db/{{ .Vars.Environment }}/password"' : 'an object key in the cluster bucket, e.g. "files/{{ .Group }}/app.conf"');
      forbid('template', 'its content is what source names');
      forbid('key', 'only certificate files have a key');
      if (file.source !== undefined) checkText(file.source, ctx, ['source']);
      break;
    case 'certificate':
      forbid('source', 'it is issued by the cluster CA from the certificates entry named by template');
      if (typeof file.template !== 'string' || file.template === '') {
        ctx.addIssue({ code: 'custom', path: ['template'], message: `a certificate file names its certificates entry in template, e.g. "web-server"; got ${describeValue(file.template)}` });
      }
      break;
    case 'env':
      forbid('source', 'its content is rendered from template');
      forbid('key', 'only certificate files have a key');
      if (!isPlainObject(file.template)) {
        ctx.addIssue({ code: 'custom', path: ['template'], message: `an env file's template is an object of variables, e.g. { "REGION": "{{ .Vars.Region }}" }; got ${describeValue(file.template)}` });
        break;
      }
      for (const [name, value] of Object.entries(file.template)) {
        if (!ENV_NAME.test(name)) ctx.addIssue({ code: 'custom', path: ['template', name], message: `invalid variable name ${describeValue(name)}: letters, digits and "_", not starting with a digit` });
        if (typeof value !== 'string') ctx.addIssue({ code: 'custom', path: ['template', name], message: `env values are strings, got ${describeValue(value)} (quote numbers and booleans)` });
        else checkText(value, ctx, ['template', name]);
      }
      break;
    case 'json':
      forbid('source', 'its content is rendered from template');
      forbid('key', 'only certificate files have a key');
      if (!isPlainObject(file.template) && !Array.isArray(file.template)) {
        ctx.addIssue({ code: 'custom', path: ['template'], message: `a json file's template is a JSON object or list (its strings are rendered); got ${describeValue(file.template)}` });
      } else checkJsonStrings(file.template, ctx, ['template']);
      break;
    case 'string':
      forbid('source', 'its content is rendered from template');
      forbid('key', 'only certificate files have a key');
      if (typeof file.template !== 'string') need('template', 'the file content, e.g. "instance {{ .Instance.ID }}\\n"');
      else checkText(file.template, ctx, ['template']);
      break;
  }
});

export const filesSchema = z.record(z.string(), fileSchema).superRefine((files, ctx) => {
  for (const name of Object.keys(files)) {
    const problem = filePathProblem(name);
    if (problem) ctx.addIssue({ code: 'custom', path: [name], message: problem });
  }
});

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

export type FileConfig = z.output<typeof fileSchema>;
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

/** Certificate files must name a certificates entry (and not the CA's). */
export function checkFileReferences(
  config: { templates: Record<string, { files?: Record<string, FileConfig> }>; certificates?: Record<string, unknown>; defaults?: { vars?: Record<string, string> } },
  list: IssueList,
): void {
  const ca = config.certificates?.[CA_ENTRY];
  if (isPlainObject(ca)) {
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
  const certificates = Object.keys(config.certificates ?? {}).filter((n) => n !== CA_ENTRY);
  for (const [templateName, template] of Object.entries(config.templates)) {
    for (const [fileName, file] of Object.entries(template.files ?? {})) {
      if (file.kind !== 'certificate' || typeof file.template !== 'string') continue;
      const path: ConfigPath = ['templates', templateName, 'files', fileName, 'template'];
      if (file.template === CA_ENTRY) list.add(path, `"${CA_ENTRY}" configures the CA; the CA certificate is delivered to every instance already (/etc/nstance/ca.crt): name a client or server entry`);
      else if (!certificates.includes(file.template)) {
        list.add(path, `unknown certificate "${file.template}"; defined certificates: ${certificates.join(', ') || '(none)'}${withHint(file.template, certificates)}`);
      }
    }
  }
}

/**
 * `{{ .Image.x }}` and `{{ .Vars.X }}` in a template's files: the image must be defined, and every
 * group using the template must set the var at some level (as for userdata).
 */
export function checkFileVars(
  config: {
    images: Record<string, unknown>;
    defaults: { vars?: Record<string, string> };
    templates: Record<string, { files?: Record<string, FileConfig>; vars?: Record<string, string> }>;
    groups: Record<string, Record<string, { template: string; vars?: Record<string, string> }>>;
    certificates?: Record<string, unknown>;
  },
  list: IssueList,
): void {
  const refsOf = (files: Record<string, FileConfig>) => {
    const out: { path: ConfigPath; ref: string[] }[] = [];
    const visit = (value: unknown, path: ConfigPath) => {
      if (typeof value === 'string') {
        try {
          for (const ref of templateReferences(value)) out.push({ path, ref });
        } catch {
          /* reported by the schema */
        }
      } else if (Array.isArray(value)) value.forEach((v, i) => visit(v, [...path, i]));
      else if (isPlainObject(value)) for (const [k, v] of Object.entries(value)) visit(v, [...path, k]);
    };
    for (const [name, file] of Object.entries(files)) {
      visit(file.source, [name, 'source']);
      if (file.kind !== 'certificate') visit(file.template, [name, 'template']);
      // A certificate file renders its certificates entry for the instance: that entry's vars must be set too.
      else if (typeof file.template === 'string' && file.template !== CA_ENTRY) {
        const entry = config.certificates?.[file.template];
        if (isPlainObject(entry)) for (const field of ['cn', 'organization', 'dns', 'ip', 'uri']) visit(entry[field], [name, `template (certificates.${file.template}.${field})`]);
      }
    }
    return out;
  };
  const byTemplate = new Map<string, { path: ConfigPath; ref: string[] }[]>();
  for (const [name, template] of Object.entries(config.templates)) {
    const refs = refsOf(template.files ?? {});
    byTemplate.set(name, refs);
    for (const { path, ref } of refs) {
      // Files are rendered by the agent API, which has no image ids to offer (userdata has them): refused here, not dropped at delivery.
      if (ref[0] === 'Image') list.add(['templates', name, 'files', ...path], `{{ .${ref.join('.')} }}: image ids are not available to files (only to userdata)`);
    }
  }
  for (const [tenant, groups] of Object.entries(config.groups)) {
    for (const [groupName, group] of Object.entries(groups)) {
      const template = config.templates[group.template];
      if (!template) continue;
      const vars = { ...config.defaults.vars, ...template.vars, ...group.vars };
      for (const { path, ref } of byTemplate.get(group.template) ?? []) {
        if (ref[0] === 'Vars' && ref.length === 2 && !(ref[1] in vars)) {
          list.add(
            ['groups', tenant, groupName, 'vars'],
            `group ${tenant}/${groupName} has no var "${ref[1]}" (used as {{ .Vars.${ref[1]} }} in templates.${group.template}.files.${path.join('.')}); set it in defaults.vars, templates.${group.template}.vars or the group's vars`,
          );
        }
      }
    }
  }
}
