/** Schema building blocks whose error messages say what is allowed, not just what failed. */
import { z } from 'zod';
import { parseDuration } from '../duration';
import { ALLOWED_FIELDS, describeValue } from './issues';

/**
 * Objects reject unknown fields: a typo such as `drain_timout` must not silently
 * fall back to a default. The message lists what the object accepts.
 */
export function strict<T extends z.core.$ZodLooseShape>(shape: T) {
  const message = `${ALLOWED_FIELDS}${Object.keys(shape).join(', ')}`;
  return z.strictObject(shape, { error: (iss) => (iss.code === 'unrecognized_keys' ? message : undefined) });
}

/** A name matched against `pattern`; `rule` explains the pattern in words. */
export function name(pattern: RegExp, rule: string) {
  return z.string().regex(pattern, { error: (iss) => `invalid name ${describeValue(iss.input)}: ${rule}` });
}

export const ID_PATTERN = /^[a-z0-9][a-z0-9-]*$/;
export const ID_RULE = 'use lowercase letters, digits and "-", starting with a letter or digit';
export const TENANT_PATTERN = /^[a-z0-9][a-z0-9_-]*$/;
export const TENANT_RULE = 'use lowercase letters, digits, "-" and "_", starting with a letter or digit';
/** Image and var names appear in `{{ .Image.x }}` / `{{ .Vars.X }}`, so they must be template identifiers. */
export const IDENT_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const IDENT_RULE = 'use letters, digits and "_", starting with a letter or "_" (it is used as a {{ .Field }} name)';

export const id = () => name(ID_PATTERN, ID_RULE).max(63, { error: 'must be at most 63 characters' });

/**
 * A Go-style duration (`90s`, `5m`, `21d`). `min` guards the intervals a workflow
 * sleeps on: a `0s` health check interval would be a timer that fires at once, for ever.
 */
export function duration(options: { min?: string } = {}) {
  return z.string().superRefine((text, ctx) => {
    try {
      const ms = parseDuration(text);
      if (options.min !== undefined && ms < parseDuration(options.min)) {
        ctx.addIssue({ code: 'custom', message: `must be at least ${options.min} (got "${text}")` });
      }
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
    }
  });
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * A map whose keys are names. Keys are checked in a refinement that runs even when
 * values have problems, so a bad name and a bad value are reported together (zod's
 * key schemas skip the value of a rejected key).
 */
export function namedRecord<V extends z.ZodType>(pattern: RegExp, rule: string, value: V, what: string) {
  return z.record(z.string(), value).superRefine(
    (rec, ctx) => {
      for (const key of Object.keys(rec)) {
        if (!pattern.test(key)) {
          ctx.addIssue({ code: 'custom', path: [key], message: `invalid ${what} name ${JSON.stringify(key)}: ${rule}` });
        }
      }
    },
    { when: (payload) => isPlainObject(payload.value) },
  );
}

export const nonEmpty = () => z.string().min(1);
