/**
 * A minimal stand-in for the IAM policy generator (issue 11 writes the real one): the actions a config
 * needs, derived from the AWS calls this project makes (adapters/), and the plan's "newly needed"
 * as the difference between two configs. The lead swaps `newIamActions` for the generator's.
 */
import type { NstanceConfig } from '../../common/config';
import type { NewIamActions } from './plan-diff';

/** Made for every shard: launching, tagging, watching and terminating instances, images, subnets, S3, secrets. */
const ALWAYS = [
  'ec2:RunInstances',
  'ec2:CreateTags',
  'ec2:DescribeInstances',
  'ec2:DescribeInstanceAttribute',
  'ec2:TerminateInstances',
  'ec2:DescribeImages',
  'ec2:DescribeSubnets',
  's3:GetObject',
  's3:PutObject',
  's3:DeleteObject',
  's3:ListBucket',
  'secretsmanager:GetSecretValue',
  'secretsmanager:CreateSecret',
  'secretsmanager:ListSecrets',
];
const LOAD_BALANCING = ['elasticloadbalancing:RegisterTargets', 'elasticloadbalancing:DeregisterTargets', 'elasticloadbalancing:DescribeTargetHealth'];
const LEADER_NETWORK = ['ec2:AttachNetworkInterface', 'ec2:DetachNetworkInterface', 'ec2:DescribeNetworkInterfaces'];

function argsOf(config: NstanceConfig): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  if (config.defaults.args) out.push(config.defaults.args);
  for (const t of Object.values(config.templates)) if (t.args) out.push(t.args);
  for (const groups of Object.values(config.groups)) for (const g of Object.values(groups)) if (g.args) out.push(g.args);
  return out;
}

export function iamActionsFor(config: NstanceConfig): Set<string> {
  const actions = new Set(ALWAYS);
  const usesLoadBalancers = Object.values(config.groups).some((groups) => Object.values(groups).some((g) => (g.load_balancers ?? []).length > 0));
  if (usesLoadBalancers) for (const a of LOAD_BALANCING) actions.add(a);
  if (config.shard.leader_network) for (const a of LEADER_NETWORK) actions.add(a);
  // Launching with an instance profile passes its role to EC2.
  if (argsOf(config).some((args) => args.IamInstanceProfile !== undefined)) actions.add('iam:PassRole');
  return actions;
}

export const newIamActions: NewIamActions = (previous, next) => {
  const had = previous ? iamActionsFor(previous) : new Set<string>();
  return [...iamActionsFor(next)].filter((a) => !had.has(a)).sort();
};
