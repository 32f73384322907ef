import type { NstanceConfig, ResolvedGroup, ShardSettings } from '../common/config';
import { launchFingerprint } from '../common/launch-fingerprint';
import type { GroupSpecResult, ImageSpec, LaunchSpec } from '../common/types';

/** Port of the agent API on the leader network address. */
export const AGENT_API_PORT = 8443;

export type { GroupSpecResult };

/** Turns config into the plain spec a group workflow carries (only the images this group uses). */
export function buildGroupSpec(
  config: NstanceConfig,
  resolved: ResolvedGroup | undefined,
  settings: ShardSettings,
): GroupSpecResult {
  const reconcileIntervalMs = settings.healthCheckIntervalMs;
  if (!resolved) return { found: false, reconcileIntervalMs };
  const images: Record<string, ImageSpec> = {};
  for (const name of resolved.imageNames) {
    const image = config.images?.[name];
    if (image) images[name] = { ...image, fallback: image.fallback ?? [] };
  }
  const leaderIp = config.shard.leader_network?.ip;
  const launch: LaunchSpec = {
    kind: resolved.kind,
    template: resolved.template,
    arch: resolved.arch,
    instanceType: resolved.instanceType,
    ...(resolved.instanceTypes ? { instanceTypes: resolved.instanceTypes } : {}),
    subnetPool: resolved.subnetPool,
    subnetIds: resolved.subnetIds,
    args: resolved.args,
    vars: resolved.vars,
    userdata: resolved.userdata,
    images,
    registrationAddress: leaderIp ? `${leaderIp}:${AGENT_API_PORT}` : undefined,
  };
  return {
    found: true,
    spec: {
      clusterId: resolved.clusterId,
      size: resolved.size,
      reconcileIntervalMs,
      createRateLimitMs: settings.createRateLimitMs,
      drainTimeoutMs: resolved.drainTimeoutMs,
      imageRefreshMs: settings.imageRefreshIntervalMs,
      ...(resolved.maxSurge ? { maxSurge: resolved.maxSurge } : {}),
      ...(resolved.maxUnavailable ? { maxUnavailable: resolved.maxUnavailable } : {}),
      lifecycle: {
        registrationTimeoutMs: settings.gc.registrationTimeoutMs,
        drainTimeoutMs: resolved.drainTimeoutMs,
        targetGroups: resolved.loadBalancers.flatMap((lb) => lb.targetGroups.map((tg) => ({ arn: tg.arn, port: tg.targetPort }))),
        expiry: settings.expiry,
      },
      launch,
      fingerprint: launchFingerprint(launch),
      ...(resolved.rotateOnImageChange ? { rotateOnImageChange: true } : {}),
    },
  };
}
