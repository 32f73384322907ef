/**
 * The limits EC2 applies to the RunInstances parameters a config's `args` can carry: id formats,
 * counts, enumerations, EBS volume ranges and their size/IOPS/throughput ratios. Checked on each args layer (defaults, template, group)
 * where it is written, so an error names the field the operator wrote; a list in a later layer
 * replaces the earlier one (resolve.ts mergeArgs), so each list checked is one EC2 may receive.
 * Values that hold `{{ }}` are rendered at launch and left to the reference checks. Tag counts and
 * the rendered userdata's size depend on the merged args and live in constraints.ts.
 */
import { isPlainObject } from './fields';

type Report = (path: readonly (string | number)[], message: string) => void;

/** EC2: security groups per network interface, 5 by default quota, 16 at most. */
export const EC2_MAX_SECURITY_GROUPS = 16;
/** EC2: key pair names, security group names and instance profile names. */
export const EC2_KEY_NAME_MAX = 255;
export const EC2_SECURITY_GROUP_NAME_MAX = 255;
export const IAM_INSTANCE_PROFILE_NAME_MAX = 128;
/** The resource types RunInstances accepts in TagSpecifications. */
export const RUN_INSTANCES_TAG_RESOURCE_TYPES = ['instance', 'volume', 'network-interface', 'spot-instances-request'] as const;

interface VolumeLimits {
  /** GiB. */
  size: [number, number];
  iops?: [number, number];
  /** MiB/s. */
  throughput?: [number, number];
  /** io1 and io2 need Iops. */
  iopsRequired?: boolean;
  /** Most IOPS per GiB of size EC2 provisions. */
  iopsPerGib?: number;
  /** IOPS every volume of the type gets whatever its size (gp3's baseline), so the ratio binds only above it. */
  baselineIops?: number;
  /** Most MiB/s of throughput per provisioned IOPS. */
  throughputPerIops?: number;
}

/**
 * EBS volume types, their ranges and ratios (Amazon EBS volume types, as of gp3's 64 TiB / 80,000 IOPS /
 * 2,000 MiB/s): gp3 500 IOPS per GiB above its 3,000 baseline and 0.25 MiB/s per IOPS; io1 50 IOPS per GiB;
 * io2 1,000 IOPS per GiB (every io2 volume is Block Express now, whose ratio that is; 500 was the older io2's).
 */
export const EBS_VOLUME_LIMITS: Readonly<Record<string, VolumeLimits>> = {
  gp3: { size: [1, 65_536], iops: [3_000, 80_000], throughput: [125, 2_000], iopsPerGib: 500, baselineIops: 3_000, throughputPerIops: 0.25 },
  gp2: { size: [1, 16_384] },
  io2: { size: [4, 65_536], iops: [100, 256_000], iopsRequired: true, iopsPerGib: 1_000 },
  io1: { size: [4, 16_384], iops: [100, 64_000], iopsRequired: true, iopsPerGib: 50 },
  st1: { size: [125, 16_384] },
  sc1: { size: [125, 16_384] },
  standard: { size: [1, 1_024] },
};
/** RunInstances' default VolumeType when a mapping names none. */
const DEFAULT_VOLUME_TYPE = 'gp2';

const templated = (value: unknown): boolean => typeof value === 'string' && value.includes('{{');

function checkFormat(value: unknown, path: readonly (string | number)[], re: RegExp, what: string, example: string, report: Report): void {
  if (value === undefined || templated(value)) return;
  if (typeof value !== 'string' || !re.test(value)) report(path, `invalid ${what} ${JSON.stringify(value)}: expected ${example}`);
}

function checkLength(value: unknown, path: readonly (string | number)[], max: number, what: string, report: Report): void {
  if (typeof value !== 'string' || templated(value)) return;
  if (value.length === 0) report(path, `${what} is empty`);
  else if (value.length > max) report(path, `${what} is ${value.length} characters; EC2 allows ${max}`);
}

function checkOneOf(value: unknown, path: readonly (string | number)[], allowed: readonly string[], report: Report): void {
  if (value === undefined || templated(value)) return;
  if (typeof value !== 'string' || !allowed.includes(value)) report(path, `must be one of ${allowed.map((a) => `"${a}"`).join(', ')}, got ${JSON.stringify(value)}`);
}

function checkInteger(value: unknown, path: readonly (string | number)[], [min, max]: [number, number], what: string, report: Report): void {
  if (value === undefined || templated(value)) return;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    report(path, `${what} must be a whole number from ${min.toLocaleString('en-US')} to ${max.toLocaleString('en-US')}, got ${JSON.stringify(value)}`);
  }
}

function checkSecurityGroups(args: Record<string, unknown>, report: Report): void {
  for (const [field, re, what, example] of [
    ['SecurityGroupIds', /^sg-[0-9a-z]+$/, 'security group id', '"sg-" followed by its id, e.g. "sg-0123456789abcdef0"'],
    ['SecurityGroups', /^.{1,255}$/s, 'security group name', `a name of 1 to ${EC2_SECURITY_GROUP_NAME_MAX} characters`],
  ] as const) {
    const list = args[field];
    if (!Array.isArray(list)) continue;
    if (list.length > EC2_MAX_SECURITY_GROUPS) report([field], `${list.length} security groups is more than EC2's ${EC2_MAX_SECURITY_GROUPS} per network interface`);
    list.forEach((value, i) => checkFormat(value, [field, i], re, what, example, report));
  }
}

function checkEbs(mapping: Record<string, unknown>, path: readonly (string | number)[], report: Report): void {
  const ebs = mapping.Ebs;
  if (!isPlainObject(ebs)) return;
  const at = [...path, 'Ebs'];
  const type = ebs.VolumeType ?? DEFAULT_VOLUME_TYPE;
  if (templated(type)) return;
  const limits = typeof type === 'string' ? EBS_VOLUME_LIMITS[type] : undefined;
  if (!limits) return void checkOneOf(type, [...at, 'VolumeType'], Object.keys(EBS_VOLUME_LIMITS), report);
  checkInteger(ebs.VolumeSize, [...at, 'VolumeSize'], limits.size, `a ${type} volume's size (GiB)`, report);
  if (ebs.Iops !== undefined && !limits.iops) report([...at, 'Iops'], `${type} volumes take no Iops (only ${Object.keys(EBS_VOLUME_LIMITS).filter((t) => EBS_VOLUME_LIMITS[t]?.iops).join(', ')} do)`);
  else if (limits.iops) checkInteger(ebs.Iops, [...at, 'Iops'], limits.iops, `a ${type} volume's Iops`, report);
  if (limits.iopsRequired && ebs.Iops === undefined) report([...at, 'Iops'], `${type} volumes need Iops (${limits.iops?.map((n) => n.toLocaleString('en-US')).join(' to ')})`);
  if (ebs.Throughput !== undefined && !limits.throughput) report([...at, 'Throughput'], `${type} volumes take no Throughput (only gp3 does)`);
  else if (limits.throughput) checkInteger(ebs.Throughput, [...at, 'Throughput'], limits.throughput, `a ${type} volume's Throughput (MiB/s)`, report);
  checkEbsRatios(String(type), limits, ebs, at, report);
}

const within = (value: unknown, range: [number, number] | undefined): value is number =>
  range !== undefined && typeof value === 'number' && Number.isInteger(value) && value >= range[0] && value <= range[1];

/**
 * EC2's ratios between a volume's size, IOPS and throughput, on values that are each in range (an out-of-range
 * value has its own error already). A volume whose size is left out takes its snapshot's, unknown here: its
 * IOPS ratio is left to EC2. gp3's IOPS default to its baseline when left out, and bound its throughput so.
 */
function checkEbsRatios(type: string, limits: VolumeLimits, ebs: Record<string, unknown>, at: readonly (string | number)[], report: Report): void {
  const iops = ebs.Iops ?? limits.baselineIops;
  if (!within(iops, limits.iops)) return;
  const fmt = (n: number) => n.toLocaleString('en-US');
  if (limits.iopsPerGib && ebs.Iops !== undefined && within(ebs.VolumeSize, limits.size)) {
    const most = Math.max(limits.baselineIops ?? 0, limits.iopsPerGib * ebs.VolumeSize);
    if (iops > most) {
      const least = Math.ceil(iops / limits.iopsPerGib);
      report([...at, 'Iops'], `${fmt(iops)} IOPS is more than a ${fmt(ebs.VolumeSize)} GiB ${type} volume can have: EC2 allows ${fmt(limits.iopsPerGib)} IOPS per GiB (${fmt(most)}); make VolumeSize at least ${fmt(least)} or Iops at most ${fmt(most)}`);
    }
  }
  if (limits.throughputPerIops && within(ebs.Throughput, limits.throughput)) {
    const most = Math.floor(iops * limits.throughputPerIops);
    if (ebs.Throughput > most) {
      const least = Math.ceil(ebs.Throughput / limits.throughputPerIops);
      const given = ebs.Iops === undefined ? `the default ${fmt(iops)} IOPS` : `${fmt(iops)} IOPS`;
      report([...at, 'Throughput'], `${fmt(ebs.Throughput)} MiB/s is more than ${given} allow on ${type}: EC2 allows ${limits.throughputPerIops} MiB/s per IOPS (${fmt(most)}); raise Iops to at least ${fmt(least)} or lower Throughput`);
    }
  }
}

function checkBlockDevices(mappings: unknown, report: Report): void {
  if (!Array.isArray(mappings)) return;
  const seen = new Map<string, number>();
  mappings.forEach((mapping, i) => {
    const path = ['BlockDeviceMappings', i];
    if (!isPlainObject(mapping)) return void report(path, 'must be an object, e.g. { "DeviceName": "/dev/xvda", "Ebs": { … } }');
    const device = mapping.DeviceName;
    if (typeof device !== 'string' || device.length === 0) report([...path, 'DeviceName'], 'DeviceName is required, e.g. "/dev/xvda"');
    else if (!templated(device)) {
      const first = seen.get(device);
      if (first !== undefined) report([...path, 'DeviceName'], `device "${device}" is mapped twice (also BlockDeviceMappings[${first}])`);
      else seen.set(device, i);
    }
    checkEbs(mapping, path, report);
  });
}

function checkTagSpecifications(specs: unknown, report: Report): void {
  if (!Array.isArray(specs)) return;
  specs.forEach((spec, i) => {
    if (!isPlainObject(spec)) return;
    checkOneOf(spec.ResourceType, ['TagSpecifications', i, 'ResourceType'], RUN_INSTANCES_TAG_RESOURCE_TYPES, report);
    if (!Array.isArray(spec.Tags)) return;
    const keys = new Map<string, number>();
    spec.Tags.forEach((tag, j) => {
      const path = ['TagSpecifications', i, 'Tags', j];
      const key = isPlainObject(tag) ? tag.Key : undefined;
      const value = isPlainObject(tag) ? tag.Value : undefined;
      if (typeof key !== 'string' || key.length === 0) return void report([...path, 'Key'], 'a tag needs a Key, a non-empty string');
      if (value !== undefined && typeof value !== 'string') report([...path, 'Value'], `tag values are strings, got ${JSON.stringify(value)}`);
      const first = keys.get(key);
      if (first !== undefined) report([...path, 'Key'], `tag "${key}" appears twice (also Tags[${first}]): EC2 refuses duplicate keys`);
      else keys.set(key, j);
    });
  });
}

/** EC2's limits on one args layer's RunInstances parameters; `report` gets the path within the args. */
export function checkRunInstancesLimits(args: Record<string, unknown>, report: Report): void {
  checkFormat(args.ImageId, ['ImageId'], /^ami-[0-9a-z]+$/, 'AMI id', '"ami-" followed by its id, or {{ .Image.<name> }}', report);
  checkFormat(args.KernelId, ['KernelId'], /^aki-[0-9a-z]+$/, 'kernel id', '"aki-" followed by its id', report);
  checkFormat(args.RamdiskId, ['RamdiskId'], /^ari-[0-9a-z]+$/, 'RAM disk id', '"ari-" followed by its id', report);
  checkLength(args.KeyName, ['KeyName'], EC2_KEY_NAME_MAX, 'KeyName', report);
  checkFormat(args.PrivateIpAddress, ['PrivateIpAddress'], /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/, 'IPv4 address', 'e.g. "10.0.1.20"', report);
  checkOneOf(args.InstanceInitiatedShutdownBehavior, ['InstanceInitiatedShutdownBehavior'], ['stop', 'terminate'], report);
  checkSecurityGroups(args, report);
  const profile = args.IamInstanceProfile;
  if (isPlainObject(profile)) {
    checkFormat(profile.Arn, ['IamInstanceProfile', 'Arn'], /^arn:aws[a-z-]*:iam::\d{12}:instance-profile\/[\w+=,.@/-]+$/, 'instance profile ARN', 'arn:aws:iam::<account>:instance-profile/<name>', report);
    checkFormat(profile.Name, ['IamInstanceProfile', 'Name'], /^[\w+=,.@-]{1,128}$/, 'instance profile name', `1 to ${IAM_INSTANCE_PROFILE_NAME_MAX} letters, digits and +=,.@_-`, report);
  }
  const metadata = args.MetadataOptions;
  if (isPlainObject(metadata)) {
    checkInteger(metadata.HttpPutResponseHopLimit, ['MetadataOptions', 'HttpPutResponseHopLimit'], [1, 64], 'HttpPutResponseHopLimit', report);
    for (const field of ['HttpEndpoint', 'HttpProtocolIpv6', 'InstanceMetadataTags']) checkOneOf(metadata[field], ['MetadataOptions', field], ['enabled', 'disabled'], report);
  }
  const credits = args.CreditSpecification;
  if (isPlainObject(credits)) checkOneOf(credits.CpuCredits, ['CreditSpecification', 'CpuCredits'], ['standard', 'unlimited'], report);
  const placement = args.Placement;
  if (isPlainObject(placement)) checkOneOf(placement.Tenancy, ['Placement', 'Tenancy'], ['default', 'dedicated', 'host'], report);
  checkBlockDevices(args.BlockDeviceMappings, report);
  checkTagSpecifications(args.TagSpecifications, report);
}
