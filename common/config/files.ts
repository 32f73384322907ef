/**
 * Nstance's `files` (per template: what each instance receives). Field names are Nstance's;
 * `mode` is ours (Nstance writes every file 0600). Strings in `source` and `template` are
 * rendered per instance with the userdata template language, minus `{{ .Nonce }}` (the
 * registration secret is for userdata only). `certificate` files name an entry of
 * `certificates` (common/config/certificates.ts).
 */
import { z } from 'zod';
import { templateReferences } from '../template';
import { CA_ENTRY, checkCaVars } from './certificates';
import { isPlainObject, nonEmpty, strict } from './fields';
import { checkJsonStrings, checkText } from './file-text';
import { describeValue, type ConfigPath, type IssueList } from './issues';
import { keyNameSchema } from './file-paths';
import { withHint } from './suggest';

export const FILE_KINDS = ['secret', 'storage', 'certificate', 'env', 'json', 'string'] as const;
export type FileKind = (typeof FILE_KINDS)[number];

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

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

export type FileConfig = z.output<typeof fileSchema>;

/** Certificate files must name a certificates entry (and not the CA's); the CA's vars must be in defaults.vars. */
export function checkFileReferences(
  config: { templates: Record<string, { files?: Record<string, FileConfig> }>; certificates?: Record<string, unknown>; defaults?: { vars?: Record<string, string> } },
  list: IssueList,
): void {
  checkCaVars(config, list);
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
