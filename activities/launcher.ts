/**
 * One instance's launch: the registration nonce, the instance-type fallback list, the rendered
 * args and userdata, and RunInstances (or adoption of what an earlier attempt launched). Shared by
 * the instance workflow's own launch activity and the group's batched launch, with one subnet
 * address cache and one capacity cool-down per worker for both.
 */
import { ApplicationFailure } from '@temporalio/common';
import { renderDeep, renderTemplate } from '../common/template';
import type { InstanceWorkflowInput, LaunchedInstance } from '../common/types';
import { defaultEc2RateLimits } from '../adapters/aws/token-bucket';
import { CapacityCooldown, TYPE_CAPACITY_SHORTAGES } from '../adapters/ec2/capacity-cooldown';
import { launchInstance, type InstanceDeps } from '../adapters/ec2/instances';
import { selectSubnet, SubnetAddressCache } from '../adapters/ec2/subnets';
import type { ActivityDeps, LaunchAttempt, RegistrationMaterial } from './deps';
import { clientTokenFor } from './client-token';
import { launchTemplateData } from './launch';

export interface Launcher {
  selectSubnet(pool: string, subnetIds: string[], exclude: string[]): Promise<string>;
  /**
   * Launches (or, with `findExisting`, first looks for and adopts) the instance in `subnetId`. Every call
   * with the same `launch` renders identical parameters (same nonce, same ClientToken).
   */
  launch(input: InstanceWorkflowInput, imageIds: Record<string, string>, subnetId: string, launch: LaunchAttempt, findExisting: boolean): Promise<LaunchedInstance>;
}

const launchers = new WeakMap<ActivityDeps, Launcher>();

/** The worker's launcher: one per deps, whichever activity factory asks first. */
export function launcherFor(deps: ActivityDeps): Launcher {
  let launcher = launchers.get(deps);
  if (!launcher) {
    launcher = createLauncher(deps);
    launchers.set(deps, launcher);
  }
  return launcher;
}

function createLauncher(deps: ActivityDeps): Launcher {
  const limits = deps.ec2Limits ?? defaultEc2RateLimits();
  const ec2: InstanceDeps = { ec2: deps.aws.ec2, limits };
  const subnets = deps.subnetAddresses ?? new SubnetAddressCache({ ec2: deps.aws.ec2, describeLimit: limits.describe });
  const cooldown = deps.capacityCooldown ?? new CapacityCooldown();

  /** One RunInstances (or adoption) as one instance type; `fallbackType` set when it is not the preferred one. */
  async function launchAs(
    input: InstanceWorkflowInput,
    imageIds: Record<string, string>,
    subnetId: string,
    launch: LaunchAttempt,
    registration: RegistrationMaterial,
    findExisting: boolean,
    fallbackType: string | undefined,
  ): Promise<LaunchedInstance> {
    const data = launchTemplateData(input, imageIds, registration);
    const where = `group ${input.tenant}/${input.group}`;
    const args = renderDeep(input.launch.args, data, `${where} args`) as Record<string, unknown>;
    const imageId = typeof args.ImageId === 'string' ? args.ImageId : Object.values(imageIds)[0];
    if (!imageId) {
      throw ApplicationFailure.create({
        type: 'ConfigInvalid',
        nonRetryable: true,
        message: `${where}: no ImageId: set args.ImageId (for example "{{ .Image.<name> }}")`,
      });
    }
    const request = {
      clusterId: input.clusterId,
      shard: input.shard,
      tenant: input.tenant,
      group: input.group,
      instanceId: input.instanceId,
      clientToken: clientTokenFor(launch, subnetId, fallbackType),
      imageId,
      instanceType: input.launch.instanceType,
      subnetId,
      args,
      userData: input.launch.userdata === undefined ? undefined : renderTemplate(input.launch.userdata, data, `${where} userdata`),
    };
    try {
      return await launchInstance(ec2, request, { findExisting });
    } catch (err) {
      if (err instanceof ApplicationFailure && err.type === 'SubnetFull') subnets.markFull(subnetId);
      throw err;
    }
  }

  return {
    selectSubnet(pool, subnetIds, exclude) {
      return selectSubnet({ ec2: deps.aws.ec2, describeLimit: limits.describe, addresses: subnets }, pool, subnetIds, exclude);
    },

    async launch(input, imageIds, subnetId, launch, findExisting) {
      const registration = deps.issueRegistrationNonce ? await deps.issueRegistrationNonce(input, launch) : { nonce: '', caCertificate: '' };
      const types = input.launch.instanceTypes ?? [input.launch.instanceType];
      if (types.length <= 1) return launchAs(input, imageIds, subnetId, launch, registration, findExisting, undefined);
      // Fallback list: the preferred type first, skipping those EC2 just had no capacity for in this subnet.
      const candidates = cooldown.available(types, subnetId);
      const refused: string[] = [];
      for (const [i, type] of candidates.entries()) {
        try {
          const fallback = type === types[0] ? undefined : type;
          return await launchAs({ ...input, launch: { ...input.launch, instanceType: type } }, imageIds, subnetId, launch, registration, i === 0 && findExisting, fallback);
        } catch (err) {
          if (!(err instanceof ApplicationFailure && err.type === 'InsufficientCapacity' && TYPE_CAPACITY_SHORTAGES.includes(String(err.details?.[0])))) throw err;
          cooldown.mark(type, subnetId);
          refused.push(type);
        }
      }
      const cooling = types.filter((t) => !candidates.includes(t));
      // Non-retryable here: the instance workflow moves on to the pool's next subnet, then backs off.
      throw ApplicationFailure.create({
        type: 'InsufficientCapacity',
        nonRetryable: true,
        message:
          `InsufficientInstanceCapacity: no capacity for ${input.instanceId} in ${subnetId} for any of ${types.join(', ')}` +
          `${refused.length > 0 ? ` (refused now: ${refused.join(', ')})` : ''}${cooling.length > 0 ? ` (cooling down after a refusal: ${cooling.join(', ')})` : ''}`,
        details: ['InsufficientInstanceCapacity', types.join(','), subnetId],
      });
    },
  };
}
