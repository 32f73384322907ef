import { parseConfigText } from '../../../common/config';
import { EC2_MAX_SECURITY_GROUPS } from '../../../common/config/run-instances-limits';
import { configErrorOf, exampleWith, setPath } from './example';

type Node = Record<string, unknown>;
const set = (path: string, value: unknown) => (c: Node) => void setPath(c, path, value);

const sgs = (n: number) => Array.from({ length: n }, (_, i) => `sg-${String(i).padStart(17, '0')}`);
const ebs = (volume: Record<string, unknown>) => [{ DeviceName: '/dev/xvda', Ebs: volume }];
const G = 'groups.default.web.args';

const cases: { name: string; at: string; value: unknown; path: string; says: string }[] = [
  { name: 'security group id format', at: 'defaults.args.SecurityGroupIds', value: ['sg-0123', 'web-sg'], path: 'defaults.args.SecurityGroupIds[1]', says: 'invalid security group id "web-sg"' },
  { name: 'too many security groups', at: `${G}.SecurityGroupIds`, value: sgs(EC2_MAX_SECURITY_GROUPS + 1), path: `${G}.SecurityGroupIds`, says: "17 security groups is more than EC2's 16" },
  { name: 'security group name too long', at: `${G}.SecurityGroups`, value: ['x'.repeat(256)], path: `${G}.SecurityGroups[0]`, says: 'invalid security group name' },
  { name: 'literal image id format', at: 'templates.web.args.ImageId', value: 'al2023', path: 'templates.web.args.ImageId', says: 'invalid AMI id "al2023"' },
  { name: 'kernel id format', at: `${G}.KernelId`, value: 'ami-0123', path: `${G}.KernelId`, says: 'invalid kernel id' },
  { name: 'key name too long', at: `${G}.KeyName`, value: 'k'.repeat(256), path: `${G}.KeyName`, says: 'KeyName is 256 characters; EC2 allows 255' },
  { name: 'empty key name', at: `${G}.KeyName`, value: '', path: `${G}.KeyName`, says: 'KeyName is empty' },
  { name: 'private IP not IPv4', at: `${G}.PrivateIpAddress`, value: '10.0.1.300', path: `${G}.PrivateIpAddress`, says: 'invalid IPv4 address "10.0.1.300"' },
  { name: 'shutdown behaviour', at: `${G}.InstanceInitiatedShutdownBehavior`, value: 'hibernate', path: `${G}.InstanceInitiatedShutdownBehavior`, says: 'must be one of "stop", "terminate"' },
  { name: 'instance profile ARN', at: 'defaults.args.IamInstanceProfile', value: { Arn: 'arn:aws:iam::123:role/web' }, path: 'defaults.args.IamInstanceProfile.Arn', says: 'invalid instance profile ARN' },
  { name: 'instance profile name', at: `${G}.IamInstanceProfile`, value: { Name: 'web profile' }, path: `${G}.IamInstanceProfile.Name`, says: 'invalid instance profile name' },
  { name: 'hop limit', at: `${G}.MetadataOptions`, value: { HttpTokens: 'required', HttpPutResponseHopLimit: 65 }, path: `${G}.MetadataOptions.HttpPutResponseHopLimit`, says: 'from 1 to 64, got 65' },
  { name: 'metadata endpoint', at: `${G}.MetadataOptions`, value: { HttpEndpoint: 'on' }, path: `${G}.MetadataOptions.HttpEndpoint`, says: 'must be one of "enabled", "disabled"' },
  { name: 'cpu credits', at: `${G}.CreditSpecification`, value: { CpuCredits: 'burst' }, path: `${G}.CreditSpecification.CpuCredits`, says: '"standard", "unlimited"' },
  { name: 'tenancy', at: `${G}.Placement`, value: { Tenancy: 'shared' }, path: `${G}.Placement.Tenancy`, says: '"default", "dedicated", "host"' },
  { name: 'unknown volume type', at: `${G}.BlockDeviceMappings`, value: ebs({ VolumeType: 'gp4', VolumeSize: 10 }), path: `${G}.BlockDeviceMappings[0].Ebs.VolumeType`, says: 'got "gp4"' },
  { name: 'gp3 Iops under its floor', at: `${G}.BlockDeviceMappings`, value: ebs({ VolumeType: 'gp3', VolumeSize: 20, Iops: 2_000 }), path: `${G}.BlockDeviceMappings[0].Ebs.Iops`, says: "a gp3 volume's Iops must be a whole number from 3,000 to 80,000, got 2000" },
  { name: 'gp3 throughput over the maximum', at: `${G}.BlockDeviceMappings`, value: ebs({ VolumeType: 'gp3', Throughput: 2_001 }), path: `${G}.BlockDeviceMappings[0].Ebs.Throughput`, says: 'from 125 to 2,000' },
  { name: 'gp2 volume over 16 TiB', at: `${G}.BlockDeviceMappings`, value: ebs({ VolumeType: 'gp2', VolumeSize: 16_385 }), path: `${G}.BlockDeviceMappings[0].Ebs.VolumeSize`, says: "a gp2 volume's size (GiB) must be a whole number from 1 to 16,384" },
  { name: 'default type (gp2) takes no Iops', at: `${G}.BlockDeviceMappings`, value: ebs({ VolumeSize: 20, Iops: 3_000 }), path: `${G}.BlockDeviceMappings[0].Ebs.Iops`, says: 'gp2 volumes take no Iops' },
  { name: 'io2 needs Iops', at: `${G}.BlockDeviceMappings`, value: ebs({ VolumeType: 'io2', VolumeSize: 100 }), path: `${G}.BlockDeviceMappings[0].Ebs.Iops`, says: 'io2 volumes need Iops' },
  { name: 'st1 too small', at: `${G}.BlockDeviceMappings`, value: ebs({ VolumeType: 'st1', VolumeSize: 100 }), path: `${G}.BlockDeviceMappings[0].Ebs.VolumeSize`, says: 'from 125 to 16,384, got 100' },
  { name: 'throughput on io1', at: `${G}.BlockDeviceMappings`, value: ebs({ VolumeType: 'io1', VolumeSize: 100, Iops: 1_000, Throughput: 500 }), path: `${G}.BlockDeviceMappings[0].Ebs.Throughput`, says: 'io1 volumes take no Throughput' },
  { name: 'fractional volume size', at: `${G}.BlockDeviceMappings`, value: ebs({ VolumeType: 'gp3', VolumeSize: 10.5 }), path: `${G}.BlockDeviceMappings[0].Ebs.VolumeSize`, says: 'got 10.5' },
  { name: 'io1 over 50 IOPS per GiB', at: `${G}.BlockDeviceMappings`, value: ebs({ VolumeType: 'io1', VolumeSize: 100, Iops: 5_001 }), path: `${G}.BlockDeviceMappings[0].Ebs.Iops`, says: '5,001 IOPS is more than a 100 GiB io1 volume can have: EC2 allows 50 IOPS per GiB (5,000); make VolumeSize at least 101 or Iops at most 5,000' },
  { name: 'io2 over 1,000 IOPS per GiB', at: `${G}.BlockDeviceMappings`, value: ebs({ VolumeType: 'io2', VolumeSize: 10, Iops: 10_001 }), path: `${G}.BlockDeviceMappings[0].Ebs.Iops`, says: 'EC2 allows 1,000 IOPS per GiB (10,000)' },
  { name: 'gp3 over 500 IOPS per GiB', at: `${G}.BlockDeviceMappings`, value: ebs({ VolumeType: 'gp3', VolumeSize: 10, Iops: 16_000 }), path: `${G}.BlockDeviceMappings[0].Ebs.Iops`, says: '16,000 IOPS is more than a 10 GiB gp3 volume can have: EC2 allows 500 IOPS per GiB (5,000); make VolumeSize at least 32' },
  { name: 'gp3 throughput over 0.25 MiB/s per IOPS', at: `${G}.BlockDeviceMappings`, value: ebs({ VolumeType: 'gp3', VolumeSize: 100, Iops: 4_000, Throughput: 1_001 }), path: `${G}.BlockDeviceMappings[0].Ebs.Throughput`, says: '1,001 MiB/s is more than 4,000 IOPS allow on gp3: EC2 allows 0.25 MiB/s per IOPS (1,000); raise Iops to at least 4,004' },
  { name: 'gp3 throughput over what the default IOPS allow', at: `${G}.BlockDeviceMappings`, value: ebs({ VolumeType: 'gp3', VolumeSize: 100, Throughput: 1_000 }), path: `${G}.BlockDeviceMappings[0].Ebs.Throughput`, says: '1,000 MiB/s is more than the default 3,000 IOPS allow on gp3' },
  { name: 'device without a name', at: `${G}.BlockDeviceMappings`, value: [{ Ebs: { VolumeSize: 10 } }], path: `${G}.BlockDeviceMappings[0].DeviceName`, says: 'DeviceName is required' },
  { name: 'device mapped twice', at: `${G}.BlockDeviceMappings`, value: [{ DeviceName: '/dev/xvda' }, { DeviceName: '/dev/xvda' }], path: `${G}.BlockDeviceMappings[1].DeviceName`, says: 'mapped twice (also BlockDeviceMappings[0])' },
  { name: 'tag resource type RunInstances does not tag', at: `${G}.TagSpecifications`, value: [{ ResourceType: 'image', Tags: [{ Key: 'a', Value: 'b' }] }], path: `${G}.TagSpecifications[0].ResourceType`, says: '"instance", "volume", "network-interface", "spot-instances-request", got "image"' },
  { name: 'duplicate tag key', at: `${G}.TagSpecifications`, value: [{ ResourceType: 'instance', Tags: [{ Key: 'team', Value: 'a' }, { Key: 'team', Value: 'b' }] }], path: `${G}.TagSpecifications[0].Tags[1].Key`, says: 'tag "team" appears twice' },
  { name: 'empty tag key', at: `${G}.TagSpecifications`, value: [{ ResourceType: 'volume', Tags: [{ Key: '', Value: 'b' }] }], path: `${G}.TagSpecifications[0].Tags[0].Key`, says: 'a tag needs a Key' },
  { name: 'tag value not a string', at: `${G}.TagSpecifications`, value: [{ ResourceType: 'instance', Tags: [{ Key: 'n', Value: 3 }] }], path: `${G}.TagSpecifications[0].Tags[0].Value`, says: 'tag values are strings, got 3' },
];

describe("EC2's limits on RunInstances parameters, checked at load time on the layer that wrote them", () => {
  it.each(cases)('$name', ({ at, value, path, says }) => {
    const err = configErrorOf(exampleWith(set(at, value)));
    const line = `config.jsonc: ${path}: `;
    const match = err.message.split('\n').find((l) => l.startsWith(line) && l.includes(says));
    if (!match) throw new Error(`no line starting with ${JSON.stringify(line)} containing ${JSON.stringify(says)} in:\n${err.message}`);
  });

  it('accepts what EC2 accepts, at the edges of each range, and leaves {{ }} values to launch time', () => {
    const args = {
      ImageId: '{{ .Image.al2023arm }}',
      SecurityGroupIds: sgs(EC2_MAX_SECURITY_GROUPS),
      KeyName: 'k'.repeat(255),
      PrivateIpAddress: '10.0.255.254',
      InstanceInitiatedShutdownBehavior: 'terminate',
      IamInstanceProfile: { Arn: 'arn:aws:iam::123456789012:instance-profile/path/web' },
      MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 64, HttpEndpoint: 'enabled', InstanceMetadataTags: 'disabled' },
      CreditSpecification: { CpuCredits: 'unlimited' },
      Placement: { Tenancy: 'default' },
      BlockDeviceMappings: [
        { DeviceName: '/dev/xvda', Ebs: { VolumeType: 'gp3', VolumeSize: 65_536, Iops: 80_000, Throughput: 2_000 } },
        { DeviceName: '/dev/xvdb', Ebs: { VolumeType: 'io2', VolumeSize: 4, Iops: 100 } },
        { DeviceName: '/dev/xvdc', Ebs: { VolumeType: 'st1', VolumeSize: 125 } },
        { DeviceName: '/dev/xvdd', Ebs: { SnapshotId: '{{ .Image.al2023arm }}' } },
        { DeviceName: '/dev/xvde', VirtualName: 'ephemeral0' },
        // At each ratio exactly: gp3's baseline at its smallest size, 500 IOPS per GiB, 0.25 MiB/s per IOPS (the
        // default IOPS too); io1 50 and io2 1,000 IOPS per GiB; a size left to the snapshot leaves the ratio to EC2.
        { DeviceName: '/dev/xvdf', Ebs: { VolumeType: 'gp3', VolumeSize: 1, Iops: 3_000, Throughput: 750 } },
        { DeviceName: '/dev/xvdg', Ebs: { VolumeType: 'gp3', VolumeSize: 32, Iops: 16_000, Throughput: 4_000 / 4 } },
        { DeviceName: '/dev/xvdh', Ebs: { VolumeType: 'gp3', VolumeSize: 8, Throughput: 750 } },
        { DeviceName: '/dev/xvdi', Ebs: { VolumeType: 'io1', VolumeSize: 100, Iops: 5_000 } },
        { DeviceName: '/dev/xvdj', Ebs: { VolumeType: 'io2', VolumeSize: 10, Iops: 10_000 } },
        { DeviceName: '/dev/xvdk', Ebs: { VolumeType: 'gp3', SnapshotId: 'snap-0123456789abcdef0', Iops: 16_000 } },
      ],
      TagSpecifications: [{ ResourceType: 'volume', Tags: [{ Key: 'team', Value: 'web' }] }],
    };
    expect(() => parseConfigText(exampleWith(set(G, args)), 'config.jsonc')).not.toThrow();
  });
});
