/**
 * What an instance record says (recordOf), and the compact form of the records a group run has queued
 * but not yet written, carried across continue-as-new so that no transition's record is lost to it.
 * Deterministic and pure, so it runs in the workflow sandbox.
 *
 * A record queued for a member crosses as [id, updatedAt (ms)] alone: the next run rebuilds it from the
 * carried member, whose state is the record's (or newer). A record of an instance no longer a member
 * (terminated, failed) has nothing else to come from, and crosses whole. Bounded: one pair per member, and at
 * most CARRIED_GONE_RECORDS whole records (past that, the oldest are dropped: garbage collection deletes
 * records of ended instances after the retention anyway).
 */
import { PHASES, type GroupRef, type InstanceRecord, type InstanceUpdate, type Member } from '../common/types';
import { EXPIRY, HEALTH, REMOVAL_REASONS } from './group-carry';

/** A member's queued record: [instanceId, updatedAt ms]. */
export type PackedMemberRecord = [string, number];
/**
 * A gone instance's record: [instanceId, updatedAt ms, phase, ec2InstanceId, privateIp, launchedAt (s), health,
 * expiry, replacing reason, leaving (1)]. Absent values are null; trailing nulls are dropped.
 */
export type PackedGoneRecord = [string, number, number, ...(string | number | null)[]];
export type PackedRecord = PackedMemberRecord | PackedGoneRecord;

export const CARRIED_GONE_RECORDS = 1000;

export function recordOf(ref: GroupRef, m: Member | InstanceUpdate, now: number): InstanceRecord {
  const member = m as Partial<Member>;
  const record: InstanceRecord = { shard: ref.shard, tenant: ref.tenant, group: ref.group, id: m.instanceId, phase: m.phase, updatedAt: new Date(now).toISOString() };
  if (m.ec2InstanceId) record.ec2InstanceId = m.ec2InstanceId;
  if (m.privateIp) record.privateIp = m.privateIp;
  if (m.launchedAt) record.launchedAt = m.launchedAt;
  if (m.health) record.health = m.health;
  if (m.expiry) record.expiry = m.expiry;
  if (member.replacing) record.replacing = member.replacing.reason;
  if (member.leaving) record.leaving = true;
  return record;
}

function code<T>(list: readonly T[], value: T | undefined): number | null {
  if (value === undefined) return null;
  const i = list.indexOf(value);
  return i < 0 ? null : i;
}

const ms = (iso: string) => {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? 0 : t;
};

function packGone(r: InstanceRecord): PackedGoneRecord {
  const launched = r.launchedAt === undefined ? NaN : Date.parse(r.launchedAt);
  const packed: (string | number | null)[] = [
    r.id,
    ms(r.updatedAt),
    PHASES.indexOf(r.phase),
    r.ec2InstanceId ?? null,
    r.privateIp ?? null,
    Number.isNaN(launched) ? null : Math.floor(launched / 1000),
    code(HEALTH, r.health),
    code(EXPIRY, r.expiry),
    code(REMOVAL_REASONS, r.replacing),
    r.leaving ? 1 : null,
  ];
  while (packed.length > 3 && packed[packed.length - 1] === null) packed.pop();
  return packed as PackedGoneRecord;
}

/** The queued records, compact: members' as pairs, then the newest CARRIED_GONE_RECORDS of the others whole. */
export function packRecords(records: Record<string, InstanceRecord>, members: Record<string, Member>): PackedRecord[] {
  const ofMembers: PackedMemberRecord[] = [];
  const gone: InstanceRecord[] = [];
  for (const r of Object.values(records)) {
    if (members[r.id]) ofMembers.push([r.id, ms(r.updatedAt)]);
    else gone.push(r);
  }
  const kept = gone.length > CARRIED_GONE_RECORDS ? [...gone].sort((a, b) => ms(b.updatedAt) - ms(a.updatedAt)).slice(0, CARRIED_GONE_RECORDS) : gone;
  return [...ofMembers, ...kept.map(packGone)];
}

/** The records a run queued, as the next run writes them: members' rebuilt from the (carried) members. */
export function unpackRecords(ref: GroupRef, packed: readonly PackedRecord[] | undefined, members: Record<string, Member>): Record<string, InstanceRecord> {
  const out: Record<string, InstanceRecord> = {};
  for (const p of packed ?? []) {
    if (!Array.isArray(p) || typeof p[0] !== 'string' || typeof p[1] !== 'number') continue;
    if (p.length === 2) {
      const member = members[p[0]];
      if (member) out[p[0]] = recordOf(ref, member, p[1]);
      continue;
    }
    const at = (i: number) => (p[i] === undefined ? null : p[i]);
    const str = (i: number) => (typeof at(i) === 'string' ? (at(i) as string) : undefined);
    const num = (i: number) => (typeof at(i) === 'number' ? (at(i) as number) : undefined);
    const phase = PHASES[num(2) ?? -1];
    if (phase === undefined) continue;
    const record: InstanceRecord = { shard: ref.shard, tenant: ref.tenant, group: ref.group, id: p[0], phase, updatedAt: new Date(p[1]).toISOString() };
    const ec2InstanceId = str(3);
    const privateIp = str(4);
    const launchedAt = num(5);
    const health = num(6) === undefined ? undefined : HEALTH[num(6) as number];
    const expiry = num(7) === undefined ? undefined : EXPIRY[num(7) as number];
    const replacing = num(8) === undefined ? undefined : REMOVAL_REASONS[num(8) as number];
    if (ec2InstanceId) record.ec2InstanceId = ec2InstanceId;
    if (privateIp) record.privateIp = privateIp;
    if (launchedAt !== undefined) record.launchedAt = new Date(launchedAt * 1000).toISOString();
    if (health) record.health = health;
    if (expiry) record.expiry = expiry;
    if (replacing) record.replacing = replacing;
    if (num(9) === 1) record.leaving = true;
    out[p[0]] = record;
  }
  return out;
}
