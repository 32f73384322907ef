import { applyEdits, findNodeAtLocation, modify, parseTree, type JSONPath, type Node } from 'jsonc-parser';
import type { SeedResult } from '../seed-emulator';

export function renderSeededConfig(exampleText: string, seed: SeedResult): string {
  const root = parseTree(exampleText, [], { allowTrailingComma: true });
  if (!root) throw new Error('example config is not JSONC');
  const edits: Array<[JSONPath, string]> = [
    [['cluster', 'storage', 'bucket'], seed.bucket],
    [['cluster', 'storage', 'region'], seed.region],
    [['shard', 'infra', 'region'], seed.region],
    [['shard', 'infra', 'zone'], seed.zone],
    [['shard', 'leader_network', 'interface_id'], seed.leaderInterfaceId],
    [['shard', 'leader_network', 'ip'], seed.leaderIp],
    [['shard', 'subnet_pools', 'private', 0], seed.subnetIds[0]],
    [['shard', 'subnet_pools', 'private', 1], seed.subnetIds[1]],
    [['defaults', 'args', 'SecurityGroupIds', 0], seed.securityGroupId],
    [['defaults', 'args', 'IamInstanceProfile', 'Arn'], seed.instanceProfileArn],
    ...targetGroupArnPaths(root).map((p): [JSONPath, string] => [p, seed.targetGroupArn]),
  ];
  let text = exampleText;
  for (const [jsonPath, value] of edits) {
    // modify() would insert a missing path; a renamed field must fail loudly instead.
    if (!findNodeAtLocation(root, jsonPath)) {
      throw new Error(`example config has no ${jsonPath.join('.')}; update scripts/seed-emulator.ts`);
    }
    text = applyEdits(text, modify(text, jsonPath, value, {}));
  }
  return text;
}

/** Every load balancer's target group ARN: the emulator has one NLB target group. */
function targetGroupArnPaths(root: Node): JSONPath[] {
  const paths: JSONPath[] = [];
  for (const lb of findNodeAtLocation(root, ['load_balancers'])?.children ?? []) {
    const key = lb.children?.[0]?.value as string | undefined;
    if (key === undefined) continue;
    const groups = findNodeAtLocation(root, ['load_balancers', key, 'target_groups'])?.children ?? [];
    groups.forEach((_, index) => paths.push(['load_balancers', key, 'target_groups', index, 'arn']));
  }
  if (paths.length === 0) throw new Error('example config has no load_balancers.*.target_groups[].arn');
  return paths;
}

/** Repo root: the nearest directory above this file with a package.json (works from dist/ too). */
