/**
 * Checks across sections of an already schema-valid config: names that refer to
 * other entries (templates, subnet pools, load balancers, images, vars) and
 * uniqueness rules. Shared by config.jsonc and dynamic groups.jsonc.
 */
import { templateReferences } from '../template';
import { forEachString } from './args';
import { withHint } from './suggest';
import { ConfigPath, IssueList } from './issues';
import type { GroupConfig, NstanceConfig, TemplateConfig } from './schema';
import { checkFileReferences, checkFileVars } from './files';
import { checkFilePaths } from './file-paths';

interface Reference {
  path: ConfigPath;
  ref: string[];
}

/** `{{ }}` references in every string of `value`, with the path of the string. */
export function referencesIn(value: unknown, base: ConfigPath): Reference[] {
  const out: Reference[] = [];
  forEachString(value, base, (text, path) => {
    // Syntax errors are reported by the schema; here only well-formed text matters.
    try {
      for (const ref of templateReferences(text)) out.push({ path, ref });
    } catch {
      /* reported elsewhere */
    }
  });
  return out;
}

function defined(what: string, names: string[]): string {
  return `defined ${what}: ${names.length ? names.join(', ') : '(none)'}`;
}

function unknownName(kind: string, plural: string, name: string, names: string[]): string {
  return `unknown ${kind} "${name}"; ${defined(plural, names)}${withHint(name, names)}`;
}

function checkImageRefs(config: NstanceConfig, refs: Reference[], list: IssueList): void {
  const images = Object.keys(config.images);
  for (const { path, ref } of refs) {
    if (ref[0] === 'Image' && ref.length === 2 && !(ref[1] in config.images)) {
      list.add(path, `{{ .Image.${ref[1]} }}: ${unknownName('image', 'images', ref[1], images)}`);
    }
  }
}

function checkSubnetPool(config: NstanceConfig, pool: string, path: ConfigPath, list: IssueList): void {
  if (!(pool in config.shard.subnet_pools)) {
    list.add(path, unknownName('subnet pool', 'pools in shard.subnet_pools', pool, Object.keys(config.shard.subnet_pools)));
  }
}

/**
 * References of one group (static or dynamic). `path` is where the group sits in
 * its own file, so dynamic groups are reported against groups.jsonc.
 */
export function checkGroupReferences(
  config: NstanceConfig,
  tenant: string,
  groupName: string,
  group: GroupConfig,
  path: ConfigPath,
  list: IssueList,
): void {
  const templates = Object.keys(config.templates);
  const template: TemplateConfig | undefined = config.templates[group.template];
  if (!template) list.add([...path, 'template'], unknownName('template', 'templates', group.template, templates));
  if (group.subnet_pool !== undefined) checkSubnetPool(config, group.subnet_pool, [...path, 'subnet_pool'], list);
  (group.load_balancers ?? []).forEach((key, i) => {
    if (!(key in config.load_balancers)) {
      list.add([...path, 'load_balancers', i], unknownName('load balancer', 'load_balancers', key, Object.keys(config.load_balancers)));
    }
  });
  checkImageRefs(config, referencesIn(group.args ?? {}, [...path, 'args']), list);
  if (!template) return;

  // Every launch needs an image, from some layer of the merged args.
  const imageId = [group.args?.ImageId, template.args?.ImageId, config.defaults.args?.ImageId].find((v) => v !== undefined);
  if (imageId === undefined) {
    list.add(
      [...path, 'args', 'ImageId'],
      `group ${tenant}/${groupName} launches without an image: set args.ImageId in defaults.args, templates.${group.template}.args or the group's args (e.g. "{{ .Image.<name> }}" for an image of "images")`,
    );
  }

  // {{ .Vars.X }} is resolved per group, so a var may be set at any level but must be set somewhere.
  const vars = { ...config.defaults.vars, ...template.vars, ...group.vars };
  const where = [
    ...referencesIn(config.defaults.args ?? {}, ['defaults', 'args']),
    ...referencesIn(template.args ?? {}, ['templates', group.template, 'args']),
    ...referencesIn(template.userdata?.content ?? '', ['templates', group.template, 'userdata', 'content']),
    ...referencesIn(group.args ?? {}, ['args']),
  ];
  const missing = new Map<string, string>();
  for (const { path: at, ref } of where) {
    if (ref[0] === 'Vars' && ref.length === 2 && !(ref[1] in vars) && !missing.has(ref[1])) {
      missing.set(ref[1], at.join('.'));
    }
  }
  for (const [name, at] of missing) {
    list.add(
      [...path, 'vars'],
      `group ${tenant}/${groupName} has no var "${name}" (used as {{ .Vars.${name} }} in ${at}); set it in defaults.vars, templates.${group.template}.vars or the group's vars`,
    );
  }
}

/** Cross-references of a config.jsonc; adds to `list` rather than throwing. */
export function checkConfigReferences(config: NstanceConfig, list: IssueList): void {
  checkImageRefs(config, referencesIn(config.defaults.args ?? {}, ['defaults', 'args']), list);
  const kinds = new Map<string, string>();
  for (const [name, template] of Object.entries(config.templates)) {
    const path = ['templates', name];
    checkSubnetPool(config, template.subnet_pool, [...path, 'subnet_pool'], list);
    const owner = kinds.get(template.kind);
    if (owner !== undefined) {
      list.add([...path, 'kind'], `kind "${template.kind}" is already used by template "${owner}"; kinds prefix instance ids, so each template needs its own`);
    } else {
      kinds.set(template.kind, name);
    }
    checkImageRefs(config, referencesIn(template.args ?? {}, [...path, 'args']), list);
    checkImageRefs(config, referencesIn(template.userdata?.content ?? '', [...path, 'userdata', 'content']), list);
  }
  for (const [tenant, groups] of Object.entries(config.groups)) {
    for (const [name, group] of Object.entries(groups)) {
      checkGroupReferences(config, tenant, name, group, ['groups', tenant, name], list);
    }
  }
  checkFileReferences(config, list);
  checkFileVars(config, list);
  checkFilePaths(config, list);
}
