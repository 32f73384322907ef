import type { ResourceType, TagSpecification } from '@aws-sdk/client-ec2';

export function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`emulator response has no ${what}`);
  return value;
}

export function nameTag(resourceType: ResourceType, name: string): TagSpecification[] {
  return [{ ResourceType: resourceType, Tags: [{ Key: 'Name', Value: name }] }];
}

/** The SDK v3 error name (e.g. "NoSuchEntity"), whatever the service's exception class. */
export function errorName(err: unknown): string | undefined {
  return err instanceof Error ? err.name : undefined;
}

/** The error is AWS's `code`, under either of the names SDK and emulator give it (`X` or `XException`). */
export function isAwsError(err: unknown, code: string): boolean {
  const name = errorName(err);
  return name === code || name === `${code}Exception`;
}

// The worker's own host: untagged for nstance (the garbage collector must never see it).
