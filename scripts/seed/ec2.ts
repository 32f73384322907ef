/** EC2 resources of the seeded network: looked up by Name tag (or CIDR) before being created. */
import {
  CreateNetworkInterfaceCommand,
  CreateSecurityGroupCommand,
  CreateSubnetCommand,
  CreateVpcCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeNetworkInterfacesCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  DescribeVpcsCommand,
  RunInstancesCommand,
  type EC2Client,
  type Image,
} from '@aws-sdk/client-ec2';
import { SEED_DEFAULTS } from './defaults';
import { nameTag, required } from './util';

export async function ensureServerInstance(ec2: EC2Client, subnetId: string, securityGroupId: string, imageId: string, name: string): Promise<string> {
  const found = await ec2.send(
    new DescribeInstancesCommand({
      Filters: [
        { Name: 'tag:Name', Values: [name] },
        { Name: 'instance-state-name', Values: ['pending', 'running'] },
      ],
    }),
  );
  const existing = found.Reservations?.[0]?.Instances?.[0]?.InstanceId;
  if (existing) return existing;
  const created = await ec2.send(
    new RunInstancesCommand({
      ImageId: imageId,
      InstanceType: 'm7g.large',
      SubnetId: subnetId,
      SecurityGroupIds: [securityGroupId],
      MinCount: 1,
      MaxCount: 1,
      TagSpecifications: nameTag('instance', name),
    }),
  );
  return required(created.Instances?.[0]?.InstanceId, 'server instance id');
}

export async function ensureVpc(ec2: EC2Client, name: string): Promise<string> {
  const found = await ec2.send(
    new DescribeVpcsCommand({
      Filters: [
        { Name: 'tag:Name', Values: [name] },
        { Name: 'cidr', Values: [SEED_DEFAULTS.vpcCidr] },
      ],
    }),
  );
  const existing = found.Vpcs?.[0]?.VpcId;
  if (existing) return existing;
  const created = await ec2.send(
    new CreateVpcCommand({ CidrBlock: SEED_DEFAULTS.vpcCidr, TagSpecifications: nameTag('vpc', name) }),
  );
  return required(created.Vpc?.VpcId, 'VPC id');
}

// Subnets are keyed by CIDR within the VPC: EC2 itself refuses a second subnet with
// the same CIDR, so that key cannot drift from what actually exists.
export async function ensureSubnet(ec2: EC2Client, vpcId: string, zone: string, cidr: string, name: string): Promise<string> {
  const found = await ec2.send(
    new DescribeSubnetsCommand({
      Filters: [
        { Name: 'vpc-id', Values: [vpcId] },
        { Name: 'cidr-block', Values: [cidr] },
      ],
    }),
  );
  const existing = found.Subnets?.[0];
  if (existing?.SubnetId) {
    if (existing.AvailabilityZone !== zone) {
      throw new Error(`subnet ${existing.SubnetId} (${cidr}) is in ${existing.AvailabilityZone}, not ${zone}`);
    }
    return existing.SubnetId;
  }
  const created = await ec2.send(
    new CreateSubnetCommand({
      VpcId: vpcId,
      CidrBlock: cidr,
      AvailabilityZone: zone,
      TagSpecifications: nameTag('subnet', name),
    }),
  );
  return required(created.Subnet?.SubnetId, 'subnet id');
}

export async function ensureSecurityGroup(ec2: EC2Client, vpcId: string, groupName: string): Promise<string> {
  const found = await ec2.send(
    new DescribeSecurityGroupsCommand({
      Filters: [
        { Name: 'vpc-id', Values: [vpcId] },
        { Name: 'group-name', Values: [groupName] },
      ],
    }),
  );
  const existing = found.SecurityGroups?.[0]?.GroupId;
  if (existing) return existing;
  const created = await ec2.send(
    new CreateSecurityGroupCommand({
      VpcId: vpcId,
      GroupName: groupName,
      Description: 'Nstance demo: instances and workers',
      TagSpecifications: nameTag('security-group', groupName),
    }),
  );
  return required(created.GroupId, 'security group id');
}

// Keyed by the fixed private IP in the subnet: the example's leader_network.ip must be
// this ENI's address, and a second ENI cannot take the same address anyway.
export async function ensureLeaderInterface(
  ec2: EC2Client,
  subnetId: string,
  securityGroupId: string,
  name: string,
): Promise<string> {
  const found = await ec2.send(
    new DescribeNetworkInterfacesCommand({ Filters: [{ Name: 'subnet-id', Values: [subnetId] }] }),
  );
  const existing = found.NetworkInterfaces?.find((eni) => eni.PrivateIpAddress === SEED_DEFAULTS.leaderIp);
  if (existing?.NetworkInterfaceId) return existing.NetworkInterfaceId;
  const created = await ec2.send(
    new CreateNetworkInterfaceCommand({
      SubnetId: subnetId,
      PrivateIpAddress: SEED_DEFAULTS.leaderIp,
      Groups: [securityGroupId],
      Description: 'Nstance leader network: follows the shard leader',
      TagSpecifications: nameTag('network-interface', name),
    }),
  );
  return required(created.NetworkInterface?.NetworkInterfaceId, 'network interface id');
}

// moto's RunInstances rejects an IamInstanceProfile that does not exist, so the
// profile the example's defaults name must be real; the role makes it a usual one.

export async function findImage(ec2: EC2Client): Promise<string> {
  const found = await ec2.send(
    new DescribeImagesCommand({
      Owners: ['amazon'],
      Filters: [
        { Name: 'name', Values: [SEED_DEFAULTS.imageNamePattern] },
        { Name: 'architecture', Values: [SEED_DEFAULTS.imageArchitecture] },
      ],
    }),
  );
  const newest = [...(found.Images ?? [])].sort(byCreationDateDesc)[0]?.ImageId;
  if (!newest) {
    throw new Error(
      `the emulator has no Amazon image named ${SEED_DEFAULTS.imageNamePattern} (${SEED_DEFAULTS.imageArchitecture}); ` +
        'moto loads them by default: unset MOTO_EC2_LOAD_DEFAULT_AMIS / MOTO_AMIS_PATH, or use a region moto has images for',
    );
  }
  return newest;
}

function byCreationDateDesc(a: Image, b: Image): number {
  return (b.CreationDate ?? '').localeCompare(a.CreationDate ?? '');
}

