/**
 * The compact form of a group's members, for what crosses continue-as-new (and the
 * rebuild activity's answer). A member is a short JSON array rather than an object:
 * at 5,000 members the keys alone would be most of the payload. Deterministic and
 * pure, so it runs in the workflow sandbox.
 */
import { PHASES, type Expiry, type Health, type Member, type RemovalReason } from '../common/types';

/**
 * [instanceId, seq, phase, ec2InstanceId, launchedAt (s), privateIp, flags, health, noticeDeadline (s),
 * expiry, replacing reason, replacing since-seq, instance type]. Absent values are null; trailing nulls are dropped. The launch
 * version (drift rotation) rides in the flags' high bits (flags = bits | version << LAUNCH_SHIFT): a slot of its
 * own at the end would force every null before it, ~20 bytes a member; in the flags it costs about 2.
 */
export type PackedMember = [string, number, number, ...(string | number | null)[]];

export const HEALTH: readonly Health[] = ['healthy', 'unhealthy', 'termination-notice'];
export const EXPIRY: readonly Expiry[] = ['eligible', 'forced'];
export const REMOVAL_REASONS: readonly RemovalReason[] = [
  'scale-down',
  'drain-requested',
  'lost',
  'unhealthy',
  'termination-notice',
  'replace-requested',
  'expired-eligible',
  'expired-forced',
  'not-a-member',
  // Appended, never inserted: carried members store a reason as its index here.
  'drift',
];

const LEAVING = 1;
const LOST = 2;
const REPLACE_REQUESTED = 4;
/** Member.tookOver; runs from before it never set the bit (it was free below LAUNCH_SHIFT). */
const TOOK_OVER = 8;
/** Flag bits below this carry the flags above; runs from before drift rotation never set bits from here up. */
const LAUNCH_SHIFT = 4;

function code<T>(list: readonly T[], value: T | undefined): number | null {
  if (value === undefined) return null;
  const i = list.indexOf(value);
  return i < 0 ? null : i;
}

/** Seconds: EC2's launch times and IMDS deadlines have no finer precision. */
function time(iso: string | undefined): number | null {
  if (iso === undefined) return null;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? null : Math.floor(ms / 1000);
}

export function packMember(m: Member): PackedMember {
  // Multiplication, not <<: a launch version never overflows 32 bits this way.
  const flags = (m.leaving ? LEAVING : 0) + (m.lost ? LOST : 0) + (m.replaceRequested ? REPLACE_REQUESTED : 0) + (m.tookOver ? TOOK_OVER : 0) + (m.launch ?? 0) * 2 ** LAUNCH_SHIFT;
  const packed: (string | number | null)[] = [
    m.instanceId,
    m.seq,
    PHASES.indexOf(m.phase),
    m.ec2InstanceId ?? null,
    time(m.launchedAt),
    m.privateIp ?? null,
    flags || null,
    code(HEALTH, m.health),
    time(m.noticeDeadline),
    code(EXPIRY, m.expiry),
    code(REMOVAL_REASONS, m.replacing?.reason),
    m.replacing?.sinceSeq ?? null,
    m.instanceType ?? null,
  ];
  while (packed.length > 3 && packed[packed.length - 1] === null) packed.pop();
  return packed as PackedMember;
}

export function unpackMember(p: PackedMember): Member {
  const at = (i: number) => (p[i] === undefined ? null : p[i]);
  const str = (i: number) => (typeof at(i) === 'string' ? (at(i) as string) : undefined);
  const num = (i: number) => (typeof at(i) === 'number' ? (at(i) as number) : undefined);
  const iso = (i: number) => (num(i) === undefined ? undefined : new Date((num(i) as number) * 1000).toISOString());
  const flags = num(6) ?? 0;
  const member: Member = { instanceId: p[0], seq: p[1], phase: PHASES[p[2]] ?? 'provisioning' };
  const set = <K extends keyof Member>(key: K, value: Member[K] | undefined) => {
    if (value !== undefined) member[key] = value;
  };
  set('ec2InstanceId', str(3));
  set('launchedAt', iso(4));
  set('privateIp', str(5));
  if (flags & LEAVING) member.leaving = true;
  if (flags & LOST) member.lost = true;
  if (flags & REPLACE_REQUESTED) member.replaceRequested = true;
  if (flags & TOOK_OVER) member.tookOver = true;
  set('health', num(7) === undefined ? undefined : HEALTH[num(7) as number]);
  set('noticeDeadline', iso(8));
  set('expiry', num(9) === undefined ? undefined : EXPIRY[num(9) as number]);
  const reason = num(10) === undefined ? undefined : REMOVAL_REASONS[num(10) as number];
  if (reason !== undefined) member.replacing = { reason, sinceSeq: num(11) ?? 0 };
  const launch = Math.floor(flags / 2 ** LAUNCH_SHIFT);
  if (launch > 0) member.launch = launch;
  set('instanceType', str(12));
  return member;
}

export function packMembers(members: Iterable<Member>): PackedMember[] {
  return [...members].sort((a, b) => a.seq - b.seq).map(packMember);
}

export function unpackMembers(packed: PackedMember[]): Record<string, Member> {
  const out: Record<string, Member> = {};
  for (const p of packed) {
    const m = unpackMember(p);
    out[m.instanceId] = m;
  }
  return out;
}
