/**
 * Drift: which members were launched from something other than what the group would launch now.
 * A group keeps a small table of launch versions (each hashed field's digest plus the image ids a
 * member was started with) and each member carries the number of its version, so thousands of
 * members launched from the same spec cost one table entry. Pure and deterministic.
 */
import { DRIFT_FIELDS, type DriftField, type LaunchFingerprint, type LaunchVersion, type Member } from '../../common/types';

export type { LaunchVersion };

/** What the group launches now: its spec's fingerprint and the image ids it resolved. */
export interface CurrentLaunch {
  fingerprint: LaunchFingerprint;
  images: Record<string, string>;
}

function sameImages(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}

/**
 * The fields on which `version` differs from what the group launches now; empty when it does not.
 * A new image alone counts only where the group rotates on one (Nstance does not).
 */
export function driftedFields(version: LaunchVersion, current: CurrentLaunch, rotateOnImageChange: boolean): DriftField[] {
  const changed: DriftField[] = DRIFT_FIELDS.filter((f) => version.fields[f] !== current.fingerprint.fields[f]);
  if (rotateOnImageChange && !sameImages(version.images, current.images)) changed.push('image');
  return changed;
}

/** The version id for what the group launches now, adding it to the table when it is new. */
export function versionFor(table: LaunchVersion[], current: CurrentLaunch): { table: LaunchVersion[]; id: number } {
  const found = table.find((v) => DRIFT_FIELDS.every((f) => v.fields[f] === current.fingerprint.fields[f]) && sameImages(v.images, current.images));
  if (found) return { table, id: found.id };
  const id = table.reduce((max, v) => Math.max(max, v.id), 0) + 1;
  return { table: [...table, { id, fields: { ...current.fingerprint.fields }, images: { ...current.images } }], id };
}

/** Versions no member refers to any more are dropped: the table stays as small as the versions in use. */
export function pruneVersions(table: LaunchVersion[], members: Iterable<Member>): LaunchVersion[] {
  const used = new Set<number>();
  for (const m of members) if (m.launch !== undefined) used.add(m.launch);
  return table.length === used.size ? table : table.filter((v) => used.has(v.id));
}

export interface DriftView {
  /** Members whose launch differs from the current one, with the fields that differ. */
  drifted: Map<string, DriftField[]>;
  /** Members with no recorded version (launched before drift rotation, or rebuilt): taken as current. */
  unversioned: string[];
}

export function driftOf(members: Iterable<Member>, table: LaunchVersion[], current: CurrentLaunch, rotateOnImageChange: boolean): DriftView {
  const versions = new Map(table.map((v) => [v.id, v]));
  const cache = new Map<number, DriftField[]>();
  const view: DriftView = { drifted: new Map(), unversioned: [] };
  for (const m of members) {
    const version = m.launch === undefined ? undefined : versions.get(m.launch);
    if (!version) {
      view.unversioned.push(m.instanceId);
      continue;
    }
    let fields = cache.get(version.id);
    if (!fields) {
      fields = driftedFields(version, current, rotateOnImageChange);
      cache.set(version.id, fields);
    }
    if (fields.length > 0) view.drifted.set(m.instanceId, fields);
  }
  return view;
}

/** "instance_type, args changed": what the audit log and the Web UI say about a drift replacement. */
export function describeDrift(fields: readonly DriftField[]): string {
  return `${fields.join(', ')} changed`;
}
