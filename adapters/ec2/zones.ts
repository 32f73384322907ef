/**
 * Availability zones by name or AZ ID. Zone names (`us-east-1a`) map to different physical zones in each
 * account; AZ IDs (`use1-az1`) do not, so a shard may name its zone either way. Checked at apply time:
 * the zone must exist, and every subnet of the shard's pools must be in it.
 */
import { DescribeAvailabilityZonesCommand, DescribeSubnetsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { ConfigValidationError, type ConfigIssue, type NstanceConfig } from '../../common/config';
import { isAzId } from '../../common/config/aws-access';
import { assumeRoleCredentials, assumeRoleSettings, type AssumeRoleClientOptions } from '../aws/assume-role';
import { withAwsErrors } from '../aws/errors';

/** An EC2 client for reading the shard's account, and how to let it go. */
export interface ShardAccountEc2 {
  ec2: Pick<EC2Client, 'send'>;
  release(): void;
}

/**
 * The client that reads the shard's zone and subnets: `own` (the operator's) when the shard has no
 * assume_role; else one signing as the shard's role, because the zone and subnets are in the role's
 * account (zone names map to other physical zones there, and the subnets exist only there).
 */
export function shardAccountEc2(config: NstanceConfig, own: Pick<EC2Client, 'send'>, options: AssumeRoleClientOptions): ShardAccountEc2 {
  const assume = config.shard.infra.assume_role;
  if (!assume) return { ec2: own, release: () => undefined };
  // The shard's region, for STS too: the operator's sts:AssumeRole is bounded to it (common/iam/documents.ts).
  const region = config.shard.infra.region;
  const credentials = assumeRoleCredentials(assumeRoleSettings(assume, config.shard.id), { ...options, region });
  const ec2 = new EC2Client({ region, ...(options.endpoint ? { endpoint: options.endpoint } : {}), credentials });
  return { ec2, release: () => ec2.destroy() };
}

export interface Zone {
  name: string;
  id: string;
}

/** The zone `zone` (a name or an AZ ID) is, in this account; undefined when the region has no such zone. */
export async function resolveZone(ec2: Pick<EC2Client, 'send'>, zone: string): Promise<Zone | undefined> {
  const filter = { Name: isAzId(zone) ? 'zone-id' : 'zone-name', Values: [zone] };
  const out = await withAwsErrors(`DescribeAvailabilityZones ${zone}`, () => ec2.send(new DescribeAvailabilityZonesCommand({ Filters: [filter], AllAvailabilityZones: true })));
  const found = (out.AvailabilityZones ?? []).find((z) => z.ZoneName === zone || z.ZoneId === zone);
  return found?.ZoneName && found.ZoneId ? { name: found.ZoneName, id: found.ZoneId } : undefined;
}

const label = (z: Zone) => `${z.name} (${z.id})`;

/**
 * The shard's zone, resolved; throws a ConfigValidationError naming the field when the zone does not exist
 * or a pool's subnet is elsewhere (naming the subnet and both zones), or does not exist at all.
 */
export async function checkShardZone(ec2: Pick<EC2Client, 'send'>, config: NstanceConfig, file: string): Promise<Zone> {
  const wanted = config.shard.infra.zone;
  const zone = await resolveZone(ec2, wanted);
  if (!zone) {
    throw new ConfigValidationError([{ file, path: 'shard.infra.zone', message: `no availability zone "${wanted}" in region ${config.shard.infra.region} (DescribeAvailabilityZones knows none by that ${isAzId(wanted) ? 'AZ ID' : 'name'})` }]);
  }
  const pools = Object.entries(config.shard.subnet_pools);
  const ids = [...new Set(pools.flatMap(([, list]) => list))];
  const out = await withAwsErrors('DescribeSubnets for the subnet pools', () => ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: 'subnet-id', Values: ids }] })));
  const seen = new Map((out.Subnets ?? []).map((s) => [s.SubnetId, s]));
  const issues: ConfigIssue[] = [];
  for (const [pool, list] of pools) {
    list.forEach((id, i) => {
      const subnet = seen.get(id);
      const path = `shard.subnet_pools.${pool}[${i}]`;
      if (!subnet) issues.push({ file, path, message: `subnet ${id} does not exist in region ${config.shard.infra.region}` });
      else if (subnet.AvailabilityZoneId !== zone.id && subnet.AvailabilityZone !== zone.name) {
        const its = { name: subnet.AvailabilityZone ?? '?', id: subnet.AvailabilityZoneId ?? '?' };
        issues.push({ file, path, message: `subnet ${id} is in zone ${label(its)}, not the shard's zone ${label(zone)} (shard.infra.zone "${wanted}")` });
      }
    });
  }
  if (issues.length > 0) throw new ConfigValidationError(issues);
  return zone;
}
