/**
 * `cluster.secrets`, as Nstance has it: where the cluster's secrets live (Secrets Manager,
 * Parameter Store SecureStrings, or AES-256-GCM objects in the cluster bucket), the key that
 * encrypts object-storage secrets and the older keys that still decrypt them during a
 * rotation, a name prefix and a cache TTL. Key material is never in the config: only where to
 * find it (an environment variable, a file, a secret or a parameter).
 */
import { z } from 'zod';
import { parseDuration } from '../duration';
import { duration, nonEmpty, strict } from './fields';

export const SECRET_PROVIDERS = ['aws-secrets-manager', 'aws-parameter-store', 'object-storage'] as const;
export const KEY_PROVIDERS = ['env', 'file', 'aws-secrets-manager', 'aws-parameter-store'] as const;
export type SecretProvider = (typeof SECRET_PROVIDERS)[number];

/** Nstance's default for object storage: `cluster/` + `secret/`. */
export const OBJECT_STORAGE_DEFAULT_PREFIX = 'secret/';

export const encryptionKeySourceSchema = strict({ provider: z.enum(KEY_PROVIDERS), source: nonEmpty() });

/**
 * Nstance's SetDefaults picks Parameter Store when `provider` is unset and the shard's infra is
 * AWS, which it always is here: a config copied from Nstance without a provider keeps working.
 */
export const DEFAULT_SECRET_PROVIDER: SecretProvider = 'aws-parameter-store';

export const secretsSchema = strict({
  provider: z.enum(SECRET_PROVIDERS).default(DEFAULT_SECRET_PROVIDER),
  prefix: z.string().optional(),
  encryption_key: encryptionKeySourceSchema.optional(),
  old_encryption_keys: z.array(encryptionKeySourceSchema).optional(),
  cache_ttl: duration().optional(),
}).superRefine((secrets, ctx) => {
  if (secrets.provider === 'object-storage' && !secrets.encryption_key) {
    ctx.addIssue({
      code: 'custom',
      path: ['encryption_key'],
      message: 'the object-storage provider encrypts every secret (AES-256-GCM): set encryption_key, e.g. { "provider": "env", "source": "NSTANCE_SECRETS_KEY" } (exactly 32 bytes)',
    });
  }
  if (secrets.old_encryption_keys?.length && !secrets.encryption_key) {
    ctx.addIssue({ code: 'custom', path: ['old_encryption_keys'], message: 'old_encryption_keys only decrypt during a rotation: set encryption_key (the new key) too' });
  }
  if (secrets.old_encryption_keys?.length && secrets.provider !== 'object-storage') {
    ctx.addIssue({
      code: 'custom',
      path: ['old_encryption_keys'],
      message: `old_encryption_keys decrypt object-storage secrets; provider "${secrets.provider}" encrypts with its own KMS keys (remove them, or use provider "object-storage")`,
    });
  }
  const same = (a: { provider: string; source: string }, b: { provider: string; source: string }) => a.provider === b.provider && a.source === b.source;
  secrets.old_encryption_keys?.forEach((old, i) => {
    if (secrets.encryption_key && same(old, secrets.encryption_key)) {
      ctx.addIssue({ code: 'custom', path: ['old_encryption_keys', i], message: `old_encryption_keys[${i}] is the current encryption_key (${old.provider} ${old.source}): list only keys being rotated away from` });
    }
  });
  const given = givenPrefix(secrets);
  if (given !== undefined) {
    const problem = prefixProblem(secrets.provider, given);
    if (problem) ctx.addIssue({ code: 'custom', path: ['prefix'], message: problem });
  }
});

export type SecretsConfig = z.output<typeof secretsSchema>;
export type EncryptionKeySource = z.output<typeof encryptionKeySourceSchema>;

/** The prefix the config sets: "" is Go's unset value, so Nstance applies its default to it too. */
function givenPrefix(secrets: { prefix?: string }): string | undefined {
  return secrets.prefix === '' ? undefined : secrets.prefix;
}

function prefixProblem(provider: SecretProvider, prefix: string): string | undefined {
  if (!prefix.endsWith('/')) return `prefix "${prefix}" must end with "/" (secret names are appended to it)`;
  if (provider === 'aws-parameter-store') {
    // Parameter Store takes a name with "/" only when it is a full path from the root.
    if (!prefix.startsWith('/')) return `a Parameter Store prefix is a path from the root: start it with "/", e.g. "/${prefix}"`;
    if (/^\/(aws|ssm)/i.test(prefix)) return `Parameter Store reserves names starting with "aws" or "ssm" (got "${prefix}")`;
  }
  if (provider === 'aws-secrets-manager' && !/^[A-Za-z0-9/_+=.@-]*$/.test(prefix)) {
    return `Secrets Manager names allow letters, digits and /_+=.@- only (got "${prefix}")`;
  }
  if (provider === 'object-storage' && (prefix.startsWith('/') || prefix.split('/').some((part) => part === '..' || part === '.'))) {
    return `an object-storage prefix is a path under cluster/ (no leading "/", no "." or ".." parts; got "${prefix}")`;
  }
  return undefined;
}

/**
 * The prefix actually used: the configured one, or Nstance's default (its config's SetDefaults:
 * "nstance/" for Secrets Manager, "/nstance/" for Parameter Store), so an Nstance user's existing
 * secrets are found under the same names. Two clusters sharing an account and store set their
 * own prefix (Nstance's OpenTofu module writes "<cluster id>/"), as in Nstance.
 *
 * `prefix: ""` is the default too: Nstance's config is Go, where "" is the unset value, so
 * SetDefaults fills it in. Taking "" as "no prefix" would let an object-storage store list
 * cluster/ca.crt as a secret and a Secrets Manager store list the whole account.
 */
export function secretsPrefix(secrets: SecretsConfig): string {
  const given = givenPrefix(secrets);
  if (given !== undefined) return given;
  switch (secrets.provider) {
    case 'object-storage':
      return OBJECT_STORAGE_DEFAULT_PREFIX;
    case 'aws-parameter-store':
      return '/nstance/';
    case 'aws-secrets-manager':
      return 'nstance/';
  }
}

/** cache_ttl in ms; undefined when unset. 0 turns caching off (Nstance's meaning). */
export function secretsCacheTtlMs(secrets: SecretsConfig): number | undefined {
  return secrets.cache_ttl === undefined ? undefined : parseDuration(secrets.cache_ttl);
}
