/**
 * Config fields of issue 11: cross-account roles (`shard.infra.assume_role`), availability zone IDs
 * (`shard.infra.zone`), and instance-type fallback (`instance_types`, `instance_requirements` on a
 * template or a group). Wired into schema.ts; every field is checked here, with a message naming it.
 */
import { z } from 'zod';
import { parseDuration } from '../duration';
import { duration, strict } from './fields';
import { describeValue } from './issues';

/** A zone name: the region and a letter (`us-east-1a`), or a Local/Wavelength zone (`us-west-2-lax-1a`). */
export const ZONE_NAME_PATTERN = /^[a-z]{2}(-[a-z]+)+-\d+(-[a-z]+-\d+)?[a-z]$/;
/** An AZ ID (`use1-az1`), the same physical zone in every account; Local Zones have one too (`usw2-lax1-az1`). */
export const AZ_ID_PATTERN = /^[a-z]{2,5}\d+(-[a-z]+\d+)?-az\d+$/;

export const isAzId = (zone: string): boolean => AZ_ID_PATTERN.test(zone);

export const zoneSchema = () =>
  z.string().refine((zone) => ZONE_NAME_PATTERN.test(zone) || AZ_ID_PATTERN.test(zone), {
    error: (iss) => `invalid zone ${describeValue(iss.input)}: expected a zone name (e.g. "us-east-1a") or an AZ ID (e.g. "use1-az1")`,
  });

const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;
// STS: ExternalId 2-1224 characters, RoleSessionName 2-64, both of [\w+=,.@:/-] (the session name without ':' and '/').
const EXTERNAL_ID = /^[\w+=,.@:/-]{2,1224}$/;
const SESSION_NAME = /^[\w+=,.@-]{2,64}$/;
/** STS's bounds for DurationSeconds (the role's MaxSessionDuration may lower the upper one). */
export const MIN_ROLE_SESSION = '15m';
export const MAX_ROLE_SESSION = '12h';

export const assumeRoleSchema = strict({
  role_arn: z.string().regex(ROLE_ARN, {
    error: (iss) => `invalid role ARN ${describeValue(iss.input)}: expected arn:aws:iam::<12-digit account>:role/<name>`,
  }),
  external_id: z
    .string()
    .regex(EXTERNAL_ID, { error: (iss) => `invalid external_id ${describeValue(iss.input)}: 2 to 1224 letters, digits or any of _+=,.@:/-` })
    .optional(),
  session_name: z
    .string()
    .regex(SESSION_NAME, { error: (iss) => `invalid session_name ${describeValue(iss.input)}: 2 to 64 letters, digits or any of _+=,.@-` })
    .optional(),
  duration: duration({ min: MIN_ROLE_SESSION })
    .superRefine((text, ctx) => {
      try {
        if (parseDuration(text) > parseDuration(MAX_ROLE_SESSION)) ctx.addIssue({ code: 'custom', message: `must be at most ${MAX_ROLE_SESSION}, STS's limit (got "${text}")` });
        if (parseDuration(text) % 1000 !== 0) ctx.addIssue({ code: 'custom', message: `must be whole seconds (got "${text}")` });
      } catch {
        // duration() reported the syntax already.
      }
    })
    .default('1h'),
});
export type AssumeRoleConfig = z.output<typeof assumeRoleSchema>;

/** The longest fallback list: instance_types, and instance_requirements' max_types. */
export const MAX_INSTANCE_TYPES = 20;

const instanceTypeName = z.string().regex(/^[a-z0-9-]+\.[a-z0-9-]+$/, {
  error: (iss) => `invalid instance type ${describeValue(iss.input)}: expected e.g. "m7g.large"`,
});

/** An ordered fallback list: the first is preferred, the next is tried when EC2 has no capacity for it. */
export const instanceTypesSchema = () =>
  z
    .array(instanceTypeName)
    .min(1, { error: 'list at least one instance type (or remove instance_types)' })
    .max(MAX_INSTANCE_TYPES, { error: (iss) => `at most ${MAX_INSTANCE_TYPES} instance types, got ${Array.isArray(iss.input) ? iss.input.length : '?'}: keep the ones worth falling back to` })
    .superRefine((list, ctx) => {
      list.forEach((t, i) => {
        if (list.indexOf(t) !== i) ctx.addIssue({ code: 'custom', path: [i], message: `duplicate instance type "${t}"` });
      });
    });

const range = (what: string, unit: string) => {
  // The schema-level error would also answer int() and min(), saying "must be a number" of a number; each check names its own rule.
  const whole = (end: 'min' | 'max', least: number) =>
    z
      .number({ error: (iss) => `${what} ${end} must be a number of ${unit}, got ${describeValue(iss.input)}` })
      .int({ error: (iss) => `${what} ${end} must be a whole number of ${unit}, got ${describeValue(iss.input)}` })
      .min(least, { error: (iss) => `${what} ${end} must be at least ${least}, got ${describeValue(iss.input)}` });
  return strict({
    min: whole('min', 0),
    max: whole('max', 1).optional(),
  }).superRefine((r, ctx) => {
    if (r.max !== undefined && r.max < r.min) ctx.addIssue({ code: 'custom', path: ['max'], message: `${what} max (${r.max}) must be >= min (${r.min})` });
  });
};

/** EC2's limits on ExcludedInstanceTypes (InstanceRequirements): at most 400 entries, each 1 to 30 characters. */
export const MAX_EXCLUDED_TYPES = 400;
export const MAX_EXCLUDED_TYPE_LENGTH = 30;

const maxTypesError = (iss: { input?: unknown }) =>
  `max_types must be a whole number from 1 to ${MAX_INSTANCE_TYPES} (the longest fallback list, as for instance_types), got ${describeValue(iss.input)}`;

/** EC2's attribute-based selection, reduced to what a fleet asks for most. */
export const instanceRequirementsSchema = () =>
  strict({
    vcpu: range('vcpu', 'vCPUs'),
    memory_mib: range('memory_mib', 'MiB'),
    /** Families (`t3`) or types with wildcards (`m5*`, `*.metal`), as EC2's ExcludedInstanceTypes. */
    excluded_types: z
      .array(
        z
          .string()
          .regex(/^[a-z0-9*.-]+$/, { error: (iss) => `invalid excluded type ${describeValue(iss.input)}: e.g. "t3", "m5*" or "*.metal"` })
          .max(MAX_EXCLUDED_TYPE_LENGTH, {
            error: (iss) => `excluded type ${describeValue(iss.input)} is ${typeof iss.input === 'string' ? iss.input.length : '?'} characters: EC2 takes at most ${MAX_EXCLUDED_TYPE_LENGTH} per excluded_types entry`,
          }),
      )
      .max(MAX_EXCLUDED_TYPES, { error: (iss) => `at most ${MAX_EXCLUDED_TYPES} excluded_types (EC2's limit), got ${Array.isArray(iss.input) ? iss.input.length : '?'}` })
      .optional(),
    burstable: z.enum(['included', 'excluded', 'required']).default('excluded'),
    /** At most this many types are kept, cheapest-looking first (fewest vCPUs, then least memory). */
    max_types: z.number({ error: maxTypesError }).int({ error: maxTypesError }).min(1, { error: maxTypesError }).max(MAX_INSTANCE_TYPES, { error: maxTypesError }).default(5),
  });
export type InstanceRequirementsConfig = z.output<ReturnType<typeof instanceRequirementsSchema>>;

/** The three ways to say what to launch; a template needs exactly one, a group at most one (it overrides). */
export const INSTANCE_TYPE_FIELDS = ['instance_type', 'instance_types', 'instance_requirements'] as const;

export function instanceTypeChoice(required: boolean) {
  return (value: Partial<Record<(typeof INSTANCE_TYPE_FIELDS)[number], unknown>>, ctx: z.core.$RefinementCtx) => {
    const given = INSTANCE_TYPE_FIELDS.filter((f) => value[f] !== undefined);
    if (given.length > 1) {
      ctx.addIssue({ code: 'custom', path: [given[1]], message: `give one of ${INSTANCE_TYPE_FIELDS.join(', ')}, not both ${given[0]} and ${given[1]}` });
    } else if (required && given.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['instance_type'], message: `required field is missing: give one of ${INSTANCE_TYPE_FIELDS.join(', ')}` });
    }
  };
}
