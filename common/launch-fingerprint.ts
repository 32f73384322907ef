/**
 * What a group's members are launched from, hashed field by field as Nstance's infra hash does
 * (args, instance type, subnet pool, userdata inputs, kind, arch), so that a group can tell which
 * members were launched from an older spec and a plan can say which field changed. Vars and files
 * are not hashed: a change to them is pushed to instances, never rotated. The resolved image id is
 * compared as it is (see workflows/decisions/drift.ts). Not for workflow code (Node's crypto).
 */
import { createHash } from 'node:crypto';
import { DRIFT_FIELDS, type HashedField, type LaunchFingerprint, type LaunchSpec } from './types';

/** JSON with object keys sorted, so that the order keys were written in never looks like a change. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

/** 8 bytes of SHA-256 in base64url (11 characters): plenty to tell versions of one group apart, small to carry. */
export function shortDigest(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest().subarray(0, 8).toString('base64url');
}

/**
 * The values each hashed field digests. The instance type is what the config asks for (never the type
 * a capacity fallback chose), so a fallback is not drift. Userdata's inputs are its template text and
 * the registration address it renders; vars, the per-instance nonce and image ids are left out (vars
 * are pushed; the nonce differs per instance by design; images are compared on their own).
 */
export function hashedValues(launch: LaunchSpec): Record<HashedField, unknown> {
  return {
    args: launch.args,
    instance_type: launch.instanceType,
    // The pool, not its subnets: adding a subnet for capacity must not rotate a fleet that runs fine where it is.
    subnet_pool: launch.subnetPool,
    userdata: { template: launch.userdata ?? null, registrationAddress: launch.registrationAddress ?? null },
    kind: launch.kind,
    arch: launch.arch,
  };
}

export function launchFingerprint(launch: LaunchSpec): LaunchFingerprint {
  const values = hashedValues(launch);
  const fields = {} as Record<HashedField, string>;
  for (const field of DRIFT_FIELDS) fields[field] = shortDigest(values[field]);
  return { fields };
}
