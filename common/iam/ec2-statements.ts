/**
 * The EC2 statements of the worker's policy: launches (with the request tags nstance sets), terminations
 * (only of its own tagged instances), the leader ENI, and the Describe calls. Each statement and each
 * action is there only when the config makes the worker need it: a key pair only when args name one,
 * instance-type look-ups only for `instance_requirements`, ENI reads and moves only with a leader ENI.
 */
import { TAG } from '../names';
import type { NstanceConfig } from '../config/schema';
import { argsLayers, launchOptionRequirements, literalArgs, taggedLaunchTypes } from './launch-args';
import type { ConditionBlock, Requirement } from './policy';

/** Every args layer a launch may merge: defaults, templates, groups. */
export function argLayers(config: NstanceConfig): unknown[] {
  return argsLayers(config).map((l) => l.args);
}

const securityGroupsOf = (config: NstanceConfig) =>
  literalArgs(config, (args) => (Array.isArray(args.SecurityGroupIds) ? args.SecurityGroupIds : undefined), /^sg-[0-9a-z]+$/);

// EC2 key pair names: up to 255 ASCII characters; a name with a template ("{{") is not known in advance.
const keyPairsOf = (config: NstanceConfig) => literalArgs(config, (args) => (args.KeyName === undefined ? undefined : [args.KeyName]), /^[^{}]{1,255}$/);

export const usesInstanceRequirements = (config: NstanceConfig): boolean =>
  Object.values(config.templates).some((t) => t.instance_requirements !== undefined) ||
  Object.values(config.groups).some((groups) => Object.values(groups).some((g) => g.instance_requirements !== undefined));

export interface Ec2Scope {
  /** `arn:<partition>:ec2:<region>:<account>` */
  ec2: string;
  partition: string;
  region: string;
  inRegion: ConditionBlock;
}

export function ec2Requirements(config: NstanceConfig, { ec2, partition, region, inRegion }: Ec2Scope): Requirement[] {
  const clusterId = config.cluster.id;
  const shard = config.shard.id;
  const out: Requirement[] = [];
  const subnets = [...new Set(Object.values(config.shard.subnet_pools).flat())].sort();
  const groups = securityGroupsOf(config);
  const keyPairs = keyPairsOf(config);
  const namedGroups = groups.values.length > 0 && !groups.all;
  out.push({
    Sid: 'LaunchTaggedInstances',
    Effect: 'Allow',
    Action: ['ec2:RunInstances'],
    Resource: [`${ec2}:instance/*`, `${ec2}:volume/*`],
    Condition: { StringEquals: { [`aws:RequestTag/${TAG.clusterId}`]: clusterId, [`aws:RequestTag/${TAG.shard}`]: shard, [`aws:RequestTag/${TAG.managed}`]: 'true' } },
    why: 'what a launch creates and tags (instance, root volume), only with the tags nstance sets (EC2 judges request tags per resource type of the request)',
  });
  const keyPairArns = keyPairs.all ? [`${ec2}:key-pair/*`] : keyPairs.values.map((k) => `${ec2}:key-pair/${k}`);
  out.push({
    Sid: 'LaunchFromConfiguredResources',
    Effect: 'Allow',
    Action: ['ec2:RunInstances'],
    Resource: [
      ...subnets.map((s) => `${ec2}:subnet/${s}`),
      ...(namedGroups ? groups.values.map((g) => `${ec2}:security-group/${g}`) : [`${ec2}:security-group/*`]),
      `arn:${partition}:ec2:${region}::image/*`,
      ...keyPairArns,
      `${ec2}:network-interface/*`,
    ],
    Condition: inRegion,
    why: `what a launch uses: the subnet pools' subnets, ${namedGroups ? 'the configured security groups' : 'security groups (args do not name them literally)'}, images (looked up by filter, so not known in advance), ${keyPairArns.length > 0 ? `the key pair${keyPairArns.length > 1 ? 's' : ''} args name (KeyName), ` : ''}and the primary network interface it creates untagged`,
  });
  out.push(...launchOptionRequirements(config, ec2, inRegion));
  const alsoTagged = taggedLaunchTypes(config);
  out.push({
    Sid: 'TagOnLaunchOnly',
    Effect: 'Allow',
    Action: ['ec2:CreateTags'],
    Resource: [`${ec2}:instance/*`, `${ec2}:volume/*`, ...alsoTagged.map((type) => `${ec2}:${type}/*`)],
    Condition: { StringEquals: { 'ec2:CreateAction': 'RunInstances' } },
    why: `tags are set by the RunInstances request itself (TagSpecifications), never afterwards${alsoTagged.length > 0 ? `; args also tag the ${alsoTagged.join(' and ')}` : ''}`,
  });
  out.push({
    Sid: 'TerminateOwnInstances',
    Effect: 'Allow',
    Action: ['ec2:TerminateInstances'],
    Resource: [`${ec2}:instance/*`],
    Condition: { StringEquals: { [`aws:ResourceTag/${TAG.clusterId}`]: clusterId, [`aws:ResourceTag/${TAG.shard}`]: shard, [`aws:ResourceTag/${TAG.managed}`]: 'true' } },
    why: "only this shard's managed instances: an untagged instance, or another cluster's or shard's, cannot be terminated",
  });

  const eni = config.shard.leader_network?.interface_id;
  if (eni) {
    out.push({
      Sid: 'LeaderNetworkInterface',
      Effect: 'Allow',
      Action: ['ec2:AttachNetworkInterface', 'ec2:DetachNetworkInterface', 'ec2:CreateTags'],
      Resource: [`${ec2}:network-interface/${eni}`],
      Condition: inRegion,
      why: 'the leader ENI, by its ARN: moved between workers and tagged with the leadership epoch',
    });
    out.push({
      Sid: 'LeaderNetworkWorkers',
      Effect: 'Allow',
      Action: ['ec2:AttachNetworkInterface', 'ec2:DetachNetworkInterface'],
      Resource: [`${ec2}:instance/*`],
      Condition: { StringEquals: { [`aws:ResourceTag/${TAG.clusterId}`]: clusterId } },
      why: `the instance side of the ENI move: worker instances, which must carry the tag ${TAG.clusterId}=${clusterId}`,
    });
  }

  const requirements = usesInstanceRequirements(config);
  out.push({
    Sid: 'Ec2Describe',
    Effect: 'Allow',
    Action: [
      'ec2:DescribeInstances',
      'ec2:DescribeImages',
      'ec2:DescribeSubnets',
      ...(eni ? ['ec2:DescribeNetworkInterfaces'] : []),
      ...(requirements ? ['ec2:DescribeInstanceTypes', 'ec2:GetInstanceTypesFromInstanceRequirements'] : []),
    ],
    Resource: ['*'],
    Condition: inRegion,
    unscoped: true,
    why: `EC2 Describe* accept no resource ARN; they read, never change, and are bounded to the region: instances, images by name, subnets' free addresses${eni ? ', the leader ENI' : ''}${requirements ? ', and the instance types instance_requirements select' : ''}`,
  });
  return out;
}
