/**
 * The plan's "IAM actions newly needed": what the generated least-privilege policy (common/iam) grants
 * the new config that it did not grant the old one. An action is new when no old statement allowed it;
 * an action already allowed but now needed on another resource (a new target group, a new secret
 * prefix) is listed with that resource, since the worker's policy must change for it too.
 */
import type { NstanceConfig } from '../../common/config';
import { iamRequirements } from '../../common/iam/policy';
import type { NewIamActions } from './plan-diff';

/** Every (action, resource) the generated policy grants `config`, as "action on resource". */
function grants(config: NstanceConfig): Map<string, Set<string>> {
  const byAction = new Map<string, Set<string>>();
  for (const statement of iamRequirements(config)) {
    for (const action of statement.Action) {
      const resources = byAction.get(action) ?? new Set<string>();
      for (const resource of statement.Resource) resources.add(resource);
      byAction.set(action, resources);
    }
  }
  return byAction;
}

/** The generated policy's actions for `config`, sorted. */
export function iamActionsFor(config: NstanceConfig): string[] {
  return [...grants(config).keys()].sort();
}

export const newIamActions: NewIamActions = (previous, next) => {
  const had = previous ? grants(previous) : new Map<string, Set<string>>();
  const added: string[] = [];
  for (const [action, resources] of grants(next)) {
    const before = had.get(action);
    if (!before) added.push(action);
    else for (const resource of resources) if (!before.has(resource)) added.push(`${action} on ${resource}`);
  }
  return added.sort();
};
