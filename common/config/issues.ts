import type { z } from 'zod';
import { suggest } from './suggest';

/** One problem in a config file; `path` is dotted (`groups.default.web.size`), '' for the file itself. */
export interface ConfigIssue {
  file: string;
  path: string;
  message: string;
}

export type ConfigPath = readonly (string | number)[];

export function formatIssue(issue: ConfigIssue): string {
  return issue.path ? `${issue.file}: ${issue.path}: ${issue.message}` : `${issue.file}: ${issue.message}`;
}

/**
 * Bad config is a user error, never retryable: callers (CLI, activities) surface
 * `.message` as-is, so it lists every problem, one per line.
 */
export class ConfigValidationError extends Error {
  readonly errors: ConfigIssue[];

  constructor(errors: ConfigIssue[]) {
    super(errors.map(formatIssue).join('\n'));
    this.name = 'ConfigValidationError';
    this.errors = errors;
  }
}

const PLAIN_KEY = /^[A-Za-z0-9_-]+$/;

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else {
      const key = String(seg);
      out += PLAIN_KEY.test(key) ? (out ? `.${key}` : key) : `[${JSON.stringify(key)}]`;
    }
  }
  return out;
}

/** Accumulates issues for one file so a single run reports everything it finds. */
export class IssueList {
  readonly issues: ConfigIssue[] = [];
  private readonly seen = new Set<string>();

  constructor(readonly file: string) {}

  add(path: readonly PropertyKey[], message: string): void {
    const issue = { file: this.file, path: formatPath(path), message };
    const key = `${issue.path}\u0000${message}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.issues.push(issue);
  }

  throwIfAny(): void {
    if (this.issues.length > 0) throw new ConfigValidationError(this.issues);
  }
}

/** Short, quoted rendering of a user value for messages. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  return String(value);
}

function article(expected: string): string {
  if (expected === 'int') return 'an integer';
  if (expected === 'record') return 'an object';
  return /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`;
}

function plural(n: number | bigint, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/**
 * Per-parse error map: zod's defaults ("Invalid input") do not tell a user what to
 * write, so each message says what was expected and what was found. Schemas with
 * their own `error` keep theirs (zod consults the schema first).
 */
export const friendlyErrorMap: z.core.$ZodErrorMap = (iss) => {
  switch (iss.code) {
    case 'invalid_type':
      if (iss.input === undefined) return 'required field is missing';
      return `expected ${article(iss.expected)}, got ${describeValue(iss.input)}`;
    case 'invalid_value':
      return `must be ${iss.values.map((v) => JSON.stringify(v)).join(' or ')}, got ${describeValue(iss.input)}`;
    case 'too_small':
      if (iss.origin === 'array') return `must have at least ${plural(iss.minimum, 'item')}`;
      if (iss.origin === 'string') return iss.minimum === 1 ? 'must not be empty' : `must be at least ${plural(iss.minimum, 'character')}`;
      return `must be ${iss.inclusive ? '>=' : '>'} ${iss.minimum}, got ${describeValue(iss.input)}`;
    case 'too_big':
      if (iss.origin === 'array') return `must have at most ${plural(iss.maximum, 'item')}`;
      if (iss.origin === 'string') return `must be at most ${plural(iss.maximum, 'character')}`;
      return `must be ${iss.inclusive ? '<=' : '<'} ${iss.maximum}, got ${describeValue(iss.input)}`;
    case 'invalid_format':
      return `invalid ${iss.format === 'regex' ? 'format' : iss.format}: ${describeValue(iss.input)}`;
    default:
      return undefined;
  }
};

/** Prefix of the unknown-field message of strict objects; read back to suggest a field per typo. */
export const ALLOWED_FIELDS = 'allowed fields: ';

function unknownFieldMessage(key: string, message: string): string {
  const allowed = message.startsWith(ALLOWED_FIELDS) ? message.slice(ALLOWED_FIELDS.length).split(', ') : [];
  const hint = suggest(key, allowed);
  return `unknown field "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}; ${message}`;
}

/** Copies zod issues into `list`, under `base` (for documents parsed piecewise). */
export function addZodIssues(list: IssueList, error: z.core.$ZodError, base: ConfigPath = []): void {
  for (const iss of error.issues) {
    if (iss.code === 'unrecognized_keys') {
      // One issue per key, at the key itself, so the path points at the typo.
      for (const key of iss.keys) list.add([...base, ...iss.path, key], unknownFieldMessage(key, iss.message));
    } else {
      list.add([...base, ...iss.path], iss.message);
    }
  }
}
