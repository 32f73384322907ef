/**
 * Dynamic groups (`shard/<shard>/groups.jsonc`), written at runtime by the CLI with
 * S3 conditional writes. An entry either defines a new group (same fields as a
 * config.jsonc group) or, for a group defined in config.jsonc, overrides its size.
 */
import { z } from 'zod';
import { isPlainObject, strict } from './fields';
import { addZodIssues, ConfigValidationError, friendlyErrorMap, IssueList } from './issues';
import { parseDocumentText } from './load';
import { GroupConfig, groupNameSchema, groupSchema, NstanceConfig, sizeSchema } from './schema';
import { checkGroupReferences } from './validate';
import { checkDynamicGroupConstraints } from './constraints';

/**
 * An override of a config.jsonc group. As in Nstance it may change only the size, the instance
 * type and vars (merged over the group's); absent fields keep the config's value.
 */
export interface SizeOverride {
  size?: number;
  instance_type?: string;
  vars?: Record<string, string>;
  /** Never set: its absence is what tells an override from a full group. */
  template?: undefined;
}

/** The fields an override of a static group may set (Nstance's rule). */
export const OVERRIDE_FIELDS = ['size', 'instance_type', 'vars'] as const;

export type DynamicGroupEntry = GroupConfig | SizeOverride;

export interface DynamicGroups {
  groups: Record<string, Record<string, DynamicGroupEntry>>;
}

export function isSizeOverride(entry: DynamicGroupEntry): entry is SizeOverride {
  return entry.template === undefined;
}

/** What to assume when groups.jsonc does not exist yet. */
export function emptyDynamicGroups(): DynamicGroups {
  return { groups: {} };
}

const fileSchema = strict({ groups: groupNameSchema(z.unknown()).default({}) });

const sizeOverrideSchema = z.strictObject(
  { size: sizeSchema().optional(), instance_type: groupSchema.shape.instance_type, vars: groupSchema.shape.vars },
  {
    error: (iss) =>
      iss.code === 'unrecognized_keys'
        ? 'an entry without "template" overrides a config.jsonc group, and may set only "size", "instance_type" and "vars" (as in Nstance); add "template" to define a new group'
        : undefined,
  },
);

function parseEntries(value: unknown, list: IssueList): DynamicGroups | undefined {
  const top = fileSchema.safeParse(value, { error: friendlyErrorMap });
  if (!top.success) {
    addZodIssues(list, top.error);
    return undefined;
  }
  const out: DynamicGroups = { groups: {} };
  for (const [tenant, groups] of Object.entries(top.data.groups)) {
    out.groups[tenant] = {};
    for (const [name, entry] of Object.entries(groups)) {
      // Dispatch on "template" rather than a zod union, whose errors would mix both shapes.
      const schema = isPlainObject(entry) && 'template' in entry ? groupSchema : sizeOverrideSchema;
      const parsed = schema.safeParse(entry, { error: friendlyErrorMap });
      if (parsed.success) out.groups[tenant][name] = parsed.data;
      else addZodIssues(list, parsed.error, ['groups', tenant, name]);
    }
  }
  return out;
}

/** Validates already-parsed data as a groups.jsonc document (structure only). */
export function parseDynamicGroupsValue(value: unknown, file: string): DynamicGroups {
  const list = new IssueList(file);
  const parsed = parseEntries(value, list);
  list.throwIfAny();
  if (!parsed) throw new ConfigValidationError([{ file, path: '', message: 'invalid dynamic groups document' }]);
  return parsed;
}

/** Parses a groups.jsonc (or YAML) text; cross-check it with validateDynamicGroups. */
export function parseDynamicGroupsText(text: string, file: string): DynamicGroups {
  return parseDynamicGroupsValue(parseDocumentText(text, file), file);
}

/**
 * Splits off size overrides for groups the config no longer defines. A `group scale`
 * racing a `config apply` that removes the group can leave one behind (the two write
 * different files); it means nothing any more, and must not make the whole shard
 * unreadable until someone edits S3 by hand.
 */
export function withoutOrphanOverrides(config: NstanceConfig, dynamic: DynamicGroups): { dynamic: DynamicGroups; orphans: string[] } {
  const out: DynamicGroups = { groups: {} };
  const orphans: string[] = [];
  for (const [tenant, entries] of Object.entries(dynamic.groups)) {
    for (const [name, entry] of Object.entries(entries)) {
      if (isPlainObject(entry) && isSizeOverride(entry) && config.groups[tenant]?.[name] === undefined) orphans.push(`${tenant}/${name}`);
      else (out.groups[tenant] ??= {})[name] = entry;
    }
  }
  return { dynamic: out, orphans };
}

/**
 * Checks dynamic groups against a config: references resolve, size-only entries
 * name a config.jsonc group, new groups do not shadow one. Re-checks structure too,
 * since callers may build `dynamic` in code rather than parse it.
 */
export function validateDynamicGroups(config: NstanceConfig, dynamic: DynamicGroups, file: string): void {
  const list = new IssueList(file);
  const parsed = parseEntries(dynamic, list);
  if (!parsed) list.throwIfAny();
  for (const [tenant, groups] of Object.entries(parsed?.groups ?? {})) {
    for (const [name, entry] of Object.entries(groups)) {
      const path = ['groups', tenant, name];
      const isStatic = config.groups[tenant]?.[name] !== undefined;
      if (isSizeOverride(entry)) {
        if (!isStatic) {
          list.add(path, `size-only entry for group ${tenant}/${name}, which is not defined in the config; add "template" to define it as a new group`);
        }
      } else if (isStatic) {
        list.add(path, `group ${tenant}/${name} is already defined in the config; use { "size": ${entry.size} } to override its size, or pick another name`);
      } else {
        checkGroupReferences(config, tenant, name, entry, path, list);
        checkDynamicGroupConstraints(config, tenant, name, entry, path, list);
      }
    }
  }
  list.throwIfAny();
}

export function serializeDynamicGroups(dynamic: DynamicGroups): string {
  return `${JSON.stringify(dynamic, null, 2)}\n`;
}
