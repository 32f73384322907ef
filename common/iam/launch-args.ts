/**
 * RunInstances args that make EC2 authorise the launch on more resource types than the instance, its
 * volume, subnet, security groups, image and key pair. Each is either granted, exactly, when the config
 * uses it (spot requests, placement groups by name, targeted capacity reservations, tags on the network
 * interface or spot request), or refused, naming the field: what it would need is outside the config
 * (a launch template's contents), it cannot work beside what nstance sets (NetworkInterfaces beside
 * SubnetId), or it is rare enough that a broad grant is not worth it (license configurations, dedicated
 * hosts, resource groups) or retired by AWS (Elastic Graphics, Elastic Inference).
 */
import type { NstanceConfig } from '../config/schema';
import { ConfigValidationError, formatPath, type ConfigIssue } from '../config/issues';
import { isPlainObject } from '../config/fields';
import type { ConditionBlock, Requirement } from './policy';

export interface ArgsLayer {
  /** Where the layer is written: defaults.args, templates.<name>.args, groups.<tenant>.<group>.args. */
  path: string[];
  args: unknown;
}

/** Every args layer a launch may merge (defaults, templates, groups), with where it is written. */
export function argsLayers(config: NstanceConfig): ArgsLayer[] {
  const layers: ArgsLayer[] = [{ path: ['defaults', 'args'], args: config.defaults.args }];
  for (const [name, t] of Object.entries(config.templates)) layers.push({ path: ['templates', name, 'args'], args: t.args });
  for (const [tenant, groups] of Object.entries(config.groups)) for (const [group, g] of Object.entries(groups)) layers.push({ path: ['groups', tenant, group, 'args'], args: g.args });
  return layers;
}

/** The value at `keys` under a layer's args, if every step is an object. */
function at(args: unknown, keys: readonly string[]): unknown {
  let value = args;
  for (const key of keys) {
    if (!isPlainObject(value)) return undefined;
    value = value[key];
  }
  return value;
}

/**
 * Literal values of one args field across the layers, or `all` when a layer sets it to something else
 * than a literal (`literal` says what is one, e.g. a value rendered per launch): then the policy must
 * name every resource of the kind.
 */
export function literalArgs(config: NstanceConfig, read: (args: Record<string, unknown>) => unknown[] | undefined, literal: RegExp): { values: string[]; all: boolean } {
  const values = new Set<string>();
  let all = false;
  for (const { args } of argsLayers(config)) {
    if (!isPlainObject(args)) continue;
    for (const value of read(args) ?? []) {
      if (typeof value === 'string' && literal.test(value)) values.add(value);
      else all = true;
    }
  }
  return { values: [...values].sort(), all };
}

interface Refusal {
  /** The field under args, e.g. ["Placement", "GroupId"]. */
  field: string[];
  /** Refused when present, or only when this says so. */
  refuses?: (value: unknown) => boolean;
  why: string;
}

const REFUSED: readonly Refusal[] = [
  {
    field: ['LaunchTemplate'],
    why: "a launch template's contents (subnets, security groups, instance profile, network interfaces) are outside the config, so the policy `nstance iam policy` generates cannot grant what they need; set those parameters in args instead",
  },
  {
    field: ['NetworkInterfaces'],
    why: 'nstance places each instance in a subnet of its pool (SubnetId), which EC2 refuses beside NetworkInterfaces; set SecurityGroupIds in args (and a public address with the subnet\'s auto-assign setting)',
  },
  { field: ['LicenseSpecifications'], why: 'license configurations are not granted by the generated policy (ec2:RunInstances on license-configuration); launch without them' },
  { field: ['ElasticGpuSpecification'], why: 'Elastic Graphics is retired by AWS' },
  { field: ['ElasticInferenceAccelerators'], why: 'Elastic Inference is retired by AWS' },
  {
    field: ['InstanceMarketOptions', 'MarketType'],
    refuses: (value) => value !== undefined && value !== 'spot',
    why: 'only "spot" is granted by the generated policy (capacity blocks authorise the launch on their capacity reservation, which the config does not name)',
  },
  { field: ['Placement', 'GroupId'], why: 'name the placement group with Placement.GroupName: IAM names a placement group by its name (placement-group/<name>), so the policy can grant only that one' },
  { field: ['Placement', 'HostId'], why: 'dedicated hosts are not granted by the generated policy (ec2:RunInstances on dedicated-host)' },
  { field: ['Placement', 'HostResourceGroupArn'], why: 'host resource groups are not granted by the generated policy' },
  {
    field: ['CapacityReservationSpecification', 'CapacityReservationTarget', 'CapacityReservationResourceGroupArn'],
    why: 'capacity reservation groups are not granted by the generated policy; name the reservation with CapacityReservationTarget.CapacityReservationId',
  },
];

/** The args fields the generated policy refuses, each as the config path it is written at and why. */
export function refusedLaunchArgs(config: NstanceConfig): { path: string; why: string }[] {
  const out: { path: string; why: string }[] = [];
  for (const layer of argsLayers(config)) {
    for (const refusal of REFUSED) {
      const value = at(layer.args, refusal.field);
      if (value === undefined || (refusal.refuses && !refusal.refuses(value))) continue;
      out.push({ path: formatPath([...layer.path, ...refusal.field]), why: refusal.why });
    }
  }
  return out;
}

/** Throws naming each args field the generated policy cannot grant (`config apply` and `nstance iam policy` refuse the config). */
export function checkLaunchArgsGrantable(config: NstanceConfig, file: string): void {
  const refused = refusedLaunchArgs(config);
  if (refused.length === 0) return;
  const issues: ConfigIssue[] = refused.map((r) => ({ file, path: r.path, message: `not supported: ${r.why}` }));
  throw new ConfigValidationError(issues);
}

/** Does a layer launch spot instances? */
export const usesSpot = (config: NstanceConfig): boolean => argsLayers(config).some((l) => at(l.args, ['InstanceMarketOptions', 'MarketType']) === 'spot');

/** The resource types the args tag at launch (TagSpecifications), besides the instance and volume nstance tags itself. */
export function taggedLaunchTypes(config: NstanceConfig): string[] {
  const types = new Set<string>();
  for (const { args } of argsLayers(config)) {
    const specs = at(args, ['TagSpecifications']);
    if (!Array.isArray(specs)) continue;
    for (const spec of specs) {
      const type = isPlainObject(spec) ? spec.ResourceType : undefined;
      const tags = isPlainObject(spec) ? spec.Tags : undefined;
      if (typeof type === 'string' && type !== 'instance' && type !== 'volume' && Array.isArray(tags) && tags.length > 0) types.add(type);
    }
  }
  return [...types].sort();
}

/**
 * The statements the launch options in args need: the spot request a spot launch creates, the placement
 * groups and capacity reservations args name (each by its ARN; every one of the kind when a layer renders
 * the name per launch).
 */
export function launchOptionRequirements(config: NstanceConfig, ec2: string, inRegion: ConditionBlock): Requirement[] {
  const out: Requirement[] = [];
  if (usesSpot(config)) {
    out.push({
      Sid: 'LaunchSpotRequests',
      Effect: 'Allow',
      Action: ['ec2:RunInstances'],
      Resource: [`${ec2}:spot-instances-request/*`],
      Condition: inRegion,
      why: 'InstanceMarketOptions.MarketType "spot": a spot launch creates a spot instance request (untagged unless args tag it)',
    });
  }
  const groups = literalArgs(config, (args) => (at(args, ['Placement', 'GroupName']) === undefined ? undefined : [at(args, ['Placement', 'GroupName'])]), /^[^{}]{1,255}$/);
  if (groups.values.length > 0 || groups.all) {
    out.push({
      Sid: 'LaunchIntoPlacementGroups',
      Effect: 'Allow',
      Action: ['ec2:RunInstances'],
      Resource: groups.all ? [`${ec2}:placement-group/*`] : groups.values.map((g) => `${ec2}:placement-group/${g}`),
      Condition: inRegion,
      why: `Placement.GroupName: ${groups.all ? 'a layer renders the name per launch, so every placement group' : `the placement group${groups.values.length > 1 ? 's' : ''} args name`}`,
    });
  }
  const reservations = literalArgs(
    config,
    (args) => {
      const id = at(args, ['CapacityReservationSpecification', 'CapacityReservationTarget', 'CapacityReservationId']);
      return id === undefined ? undefined : [id];
    },
    /^cr-[0-9a-f]+$/,
  );
  if (reservations.values.length > 0 || reservations.all) {
    out.push({
      Sid: 'LaunchIntoCapacityReservations',
      Effect: 'Allow',
      Action: ['ec2:RunInstances'],
      Resource: reservations.all ? [`${ec2}:capacity-reservation/*`] : reservations.values.map((r) => `${ec2}:capacity-reservation/${r}`),
      Condition: inRegion,
      why: `CapacityReservationSpecification.CapacityReservationTarget.CapacityReservationId: ${reservations.all ? 'a layer renders it per launch, so every capacity reservation' : 'the reservations args target'} (an "open" or "none" preference names no reservation and needs none)`,
    });
  }
  return out;
}
