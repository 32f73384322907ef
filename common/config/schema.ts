/**
 * Nstance's shard config (`config.jsonc`), field names kept exactly as Nstance's so
 * its users can bring their config unchanged. Checks that involve one field live
 * here; checks across sections (does this template exist?) are in validate.ts.
 */
import { z } from 'zod';
import { parseAmount } from '../amount';
import { argsSchema, templateTextProblems } from './args';
import {
  duration,
  id,
  IDENT_PATTERN,
  IDENT_RULE,
  namedRecord,
  nonEmpty,
  strict,
  TENANT_PATTERN,
  TENANT_RULE,
} from './fields';
import { describeValue } from './issues';
import { DEFAULT_SECRET_PROVIDER, secretsSchema } from './secrets';
import { certificatesSchema } from './certificates';
import { filesSchema } from './files';
import { assumeRoleSchema, instanceRequirementsSchema, instanceTypeChoice, instanceTypesSchema, isAzId, zoneSchema } from './aws-access';

/** Groups of 2,000 are the design point; 5,000 is a whole shard. */
export const MAX_GROUP_SIZE = 5000;

const pattern = (re: RegExp, what: string, expected: string) =>
  z.string().regex(re, { error: (iss) => `invalid ${what} ${describeValue(iss.input)}: expected ${expected}` });

const region = pattern(/^[a-z]{2}(-[a-z]+)+-\d+$/, 'AWS region', 'e.g. "us-east-1"');
const subnetId = pattern(/^subnet-[0-9a-z]+$/, 'subnet id', '"subnet-" followed by its id, e.g. "subnet-0123abcd"');
const amiId = pattern(/^ami-[0-9a-z]+$/, 'AMI id', '"ami-" followed by its id, e.g. "ami-0123abcd"');
const targetGroupArn = pattern(
  /^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:targetgroup\/[^/]+\/[0-9a-z]+$/,
  'target group ARN',
  'arn:aws:elasticloadbalancing:<region>:<account>:targetgroup/<name>/<id>',
);
const instanceType = pattern(/^[a-z0-9-]+\.[a-z0-9-]+$/, 'instance type', 'e.g. "m7g.large"');

const sizeError = (iss: { input?: unknown }) =>
  iss.input === undefined
    ? 'required field is missing'
    : `size must be an integer from 0 to ${MAX_GROUP_SIZE}, got ${describeValue(iss.input)}` +
      (typeof iss.input === 'string' ? ' (a string: remove the quotes)' : '');
export const sizeSchema = () =>
  z.number({ error: sizeError }).int({ error: sizeError }).min(0, { error: sizeError }).max(MAX_GROUP_SIZE, { error: sizeError });

const portError = (iss: { input?: unknown }) => `must be a port number from 1 to 65535, got ${describeValue(iss.input)}`;
const port = z.number({ error: portError }).int({ error: portError }).min(1, { error: portError }).max(65535, { error: portError });

const kind = z.string().regex(/^[a-z][a-z0-9]{2}$/, {
  error: (iss) =>
    `invalid kind ${describeValue(iss.input)}: must be exactly 3 lowercase letters or digits, starting with a letter (it prefixes instance ids)`,
});

const varsSchema = () =>
  namedRecord(
    IDENT_PATTERN,
    IDENT_RULE,
    z.string({ error: (iss) => `var values must be strings, got ${describeValue(iss.input)} (quote numbers and booleans)` }),
    'var',
  );

const uniqueStrings = (what: string) => (list: string[], ctx: z.core.$RefinementCtx<string[]>) => {
  list.forEach((item, i) => {
    if (list.indexOf(item) !== i) ctx.addIssue({ code: 'custom', path: [i], message: `duplicate ${what} "${item}"` });
  });
};

export const clusterSchema = strict({
  id: id(),
  storage: strict({
    provider: z.literal('s3'),
    bucket: pattern(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'S3 bucket name', '3-63 lowercase letters, digits, "." and "-"'),
    region: region.optional(),
    // For S3-compatible stores and emulators (moto, MinIO); AWS itself needs none.
    endpoint: z
      .url({ protocol: /^https?$/, error: (iss) => `invalid endpoint ${describeValue(iss.input)}: expected an http(s) URL such as "http://127.0.0.1:5000"` })
      .optional(),
  }),
  // Omitted altogether, as Nstance allows: the default provider with its default prefix.
  secrets: secretsSchema.default(() => ({ provider: DEFAULT_SECRET_PROVIDER })),
});

export const shardSchema = strict({
  id: id(),
  infra: strict({ provider: z.literal('aws'), region, zone: zoneSchema(), assume_role: assumeRoleSchema.optional() }).superRefine((infra, ctx) => {
    // An AZ ID (use1-az1) does not spell its region: `config apply` resolves it with DescribeAvailabilityZones.
    if (!isAzId(infra.zone) && !infra.zone.startsWith(infra.region)) {
      ctx.addIssue({ code: 'custom', path: ['zone'], message: `zone "${infra.zone}" is not in region "${infra.region}" (expected e.g. "${infra.region}a")` });
    }
  }),
  leader_network: strict({
    interface_id: pattern(/^eni-[0-9a-z]+$/, 'network interface id', '"eni-" followed by its id, e.g. "eni-0123abcd"'),
    ip: z.ipv4(),
  }).optional(),
  subnet_pools: namedRecord(
    TENANT_PATTERN,
    TENANT_RULE,
    z.array(subnetId).min(1, { error: 'a subnet pool needs at least one subnet' }).superRefine(uniqueStrings('subnet')),
    'subnet pool',
  ),
  health_check_interval: duration({ min: '1s' }).default('60s'),
  default_drain_timeout: duration().default('5m'),
  image_refresh_interval: duration({ min: '1s' }).default('6h'),
  create_rate_limit: duration().default('200ms'),
  // Their ordering (forced_age strictly after eligible_age) is Nstance's and is checked once, in constraints.ts.
  expiry: strict({ eligible_age: duration(), forced_age: duration() }).optional(),
  garbage_collection: strict({
    interval: duration({ min: '1s' }).default('2m'),
    registration_timeout: duration({ min: '1s' }).default('5m'),
    // How long instance records (shard/<shard>/instance/…) outlive their instance, as in Nstance.
    deleted_record_retention: duration().default('30m'),
  }).prefault({}),
});

export const imageSchema = strict({
  filters: z.array(strict({ name: nonEmpty(), values: z.array(nonEmpty()).min(1) })).min(1),
  owners: z.array(nonEmpty()).min(1, { error: 'list at least one AMI owner (e.g. "amazon" or an account id)' }),
  sort: z.enum(['creation-date', 'name']).default('creation-date'),
  order: z.enum(['asc', 'desc']).default('desc'),
  fallback: z.array(amiId).optional(),
});

export const loadBalancerSchema = strict({
  provider: z.literal('aws').optional(),
  target_groups: z.array(strict({ arn: targetGroupArn, target_port: port })).min(1),
});

export const defaultsSchema = strict({ args: argsSchema().optional(), vars: varsSchema().optional() });

export const templateSchema = strict({
  kind,
  arch: z.enum(['amd64', 'arm64']),
  instance_type: instanceType.optional(),
  instance_types: instanceTypesSchema().optional(),
  instance_requirements: instanceRequirementsSchema().optional(),
  subnet_pool: nonEmpty(),
  userdata: strict({
    content: z.string().superRefine((text, ctx) => {
      for (const message of templateTextProblems(text)) ctx.addIssue({ code: 'custom', message });
    }),
  }).optional(),
  args: argsSchema().optional(),
  vars: varsSchema().optional(),
  files: filesSchema.optional(),
}).superRefine(instanceTypeChoice(true));

/** `max_surge` / `max_unavailable`: a count or a percentage of the group's size. */
const amount = () =>
  z.custom<number | string>((value) => parseAmount(value) !== undefined, {
    error: (iss) => `must be a whole number (e.g. 2) or a percentage of the group's size from "0%" to "100%" (e.g. "10%"), got ${describeValue(iss.input)}`,
  });

const isZero = (value: number | string | undefined) => value !== undefined && parseAmount(value) !== undefined && Object.values(parseAmount(value) ?? {})[0] === 0;

export const groupSchema = strict({
  template: nonEmpty(),
  size: sizeSchema(),
  max_surge: amount().optional(),
  max_unavailable: amount().optional(),
  instance_type: instanceType.optional(),
  instance_types: instanceTypesSchema().optional(),
  instance_requirements: instanceRequirementsSchema().optional(),
  subnet_pool: nonEmpty().optional(),
  vars: varsSchema().optional(),
  args: argsSchema().optional(),
  drain_timeout: duration().optional(),
  load_balancers: z.array(nonEmpty()).superRefine(uniqueStrings('load balancer')).optional(),
  // Whether a newly resolved image id alone replaces the group's members (drift rotation); Nstance does not.
  rotate_on_image_change: z.boolean({ error: (iss) => `must be true or false, got ${describeValue(iss.input)}` }).optional(),
}).superRefine(instanceTypeChoice(false)).superRefine((group, ctx) => {
  // max_surge defaults to 1: only an explicit 0 together with max_unavailable 0 (or absent) leaves no way to replace.
  if (isZero(group.max_surge) && (group.max_unavailable === undefined || isZero(group.max_unavailable))) {
    ctx.addIssue({
      code: 'custom',
      path: ['max_surge'],
      message: 'max_surge 0 with max_unavailable 0 leaves no way to replace a member: allow a surge (e.g. 1) or some unavailability (e.g. 1)',
    });
  }
});

export const groupNameSchema = <V extends z.ZodType>(value: V) =>
  namedRecord(TENANT_PATTERN, TENANT_RULE, namedRecord(TENANT_PATTERN, TENANT_RULE, value, 'group'), 'tenant');

export const configSchema = strict({
  cluster: clusterSchema,
  shard: shardSchema,
  images: namedRecord(IDENT_PATTERN, IDENT_RULE, imageSchema, 'image').default({}),
  load_balancers: namedRecord(TENANT_PATTERN, TENANT_RULE, loadBalancerSchema, 'load balancer').default({}),
  defaults: defaultsSchema.default({}),
  certificates: certificatesSchema.optional(),
  templates: namedRecord(TENANT_PATTERN, TENANT_RULE, templateSchema, 'template').default({}),
  groups: groupNameSchema(groupSchema).default({}),
});

export type NstanceConfig = z.output<typeof configSchema>;
export type ClusterConfig = NstanceConfig['cluster'];
export type ShardConfig = NstanceConfig['shard'];
export type ImageConfig = z.output<typeof imageSchema>;
export type LoadBalancerConfig = z.output<typeof loadBalancerSchema>;
export type TemplateConfig = z.output<typeof templateSchema>;
export type GroupConfig = z.output<typeof groupSchema>;
