/**
 * One line per activity for the Web UI's timeline ("RunInstances web-… in subnet-… (ami-…)"),
 * built from the activity's own arguments, so every call site gets one without carrying
 * text around. The interceptor in workflows/interceptors.ts puts it on each scheduled
 * activity unless the call site set its own (`executeWithOptions({ summary })`, for facts
 * the arguments lack, such as why an instance is terminated).
 *
 * Summaries are user metadata on the ScheduleActivityTask command: not part of what replay
 * compares, so adding or rewording them never makes a recorded history non-deterministic.
 */
import type { Activities } from '../activities';
import type { LeaderServeActivities } from '../activities/leader-serve';
import { summaryLine } from '../common/run-summaries';

type Known = Activities & LeaderServeActivities;
type Summarizers = { [K in keyof Known]?: (...args: Parameters<Known[K]>) => string };

const count = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** At most three ids, then how many more: a batch of 1,000 must not make a summary of 1,000 ids. */
function someIds(ids: readonly string[]): string {
  if (ids.length <= 3) return ids.join(', ');
  return `${ids.slice(0, 3).join(', ')} and ${ids.length - 3} more`;
}

function byReason(reasons: readonly string[]): string {
  const tally = new Map<string, number>();
  for (const r of reasons) tally.set(r, (tally.get(r) ?? 0) + 1);
  return [...tally].map(([reason, n]) => `${n} ${reason}`).join(', ');
}

/** A target group by its name (`…:targetgroup/<name>/<id>`), not its whole ARN. */
const targetGroupNames = (tgs: readonly { arn: string }[]) => tgs.map((tg) => /:targetgroup\/([^/]+)/.exec(tg.arn)?.[1] ?? tg.arn).join(', ');

const summarizers: Summarizers = {
  loadGroupSpec: (ref, options) => `load the spec of ${ref.tenant}/${ref.group}${options?.fresh ? ' (fresh from S3)' : ' (cached)'}`,
  loadShardSettings: (shard) => `load shard ${shard}'s settings`,
  lookupImages: (images, arch) => `look up image${Object.keys(images).length === 1 ? '' : 's'} ${Object.keys(images).join(', ')} (${arch})`,
  selectSubnet: (pool, subnetIds, exclude) =>
    `choose a subnet of pool ${pool} (${count(subnetIds.length, 'subnet')}${exclude.length > 0 ? `, ${exclude.join(', ')} full` : ''})`,
  launchInstance: (input, imageIds, subnetId) =>
    `RunInstances ${input.instanceId} (${input.launch.instanceType}) in ${subnetId} (${Object.values(imageIds).join(', ') || 'no image'})`,
  awaitInstanceState: (ec2InstanceId, target) => `wait for ${ec2InstanceId} to be ${target}`,
  observeInstances: (ids) => `describe ${count(ids.length, 'instance')} (${someIds(ids)})`,
  terminateInstance: (ec2InstanceId) => `terminate ${ec2InstanceId}`,
  registerTargets: (tgs, ec2InstanceId) => `register ${ec2InstanceId} in ${targetGroupNames(tgs)}`,
  drainTargets: (tgs, ec2InstanceId, timeoutMs) => `drain ${ec2InstanceId} from ${targetGroupNames(tgs)} (up to ${Math.round(timeoutMs / 1000)} s)`,
  ensureTargets: (tgs, ids) => `check ${count(ids.length, 'serving instance')} are registered in ${targetGroupNames(tgs)}`,
  startInstanceWorkflows: (inputs) => `start ${count(inputs.length, 'instance workflow')}`,
  startInstanceBatch: (batch) => {
    const what = `${count(batch.instanceIds.length, 'instance')} of ${batch.common.tenant}/${batch.common.group} (${batch.common.launch.instanceType})`;
    if (!batch.launchFirst) return `start ${what}: ${someIds(batch.instanceIds)}`;
    // The batch's launches: the subnets are chosen inside the activity, so the pool is named.
    const images = Object.values(batch.common.imageIds ?? {}).join(', ') || 'no image';
    return `RunInstances and start ${what} in pool ${batch.common.launch.subnetPool} (${images}): ${someIds(batch.instanceIds)}`;
  },
  signalInstances: (batch) => `tell ${count(batch.removals.length, 'instance')} to leave (${byReason(batch.removals.map((r) => r.reason))}): ${someIds(batch.removals.map((r) => r.instanceId))}`,
  rebuildMembers: (request) => `rebuild ${request.tenant}/${request.group}'s members from visibility and EC2 tags`,
  writeAudit: (entry) => {
    const about = entry.instanceIds?.length ? ` ${someIds(entry.instanceIds)}` : entry.group ? ` ${entry.tenant}/${entry.group}` : '';
    return `audit ${entry.action}${about}`;
  },
  writeInstanceRecords: (records) => {
    const groups = [...new Set(records.map((r) => `${r.tenant}/${r.group}`))].join(', ');
    return `write ${count(records.length, 'instance record')}${groups ? ` of ${groups}` : ''} to S3: ${someIds(records.map((r) => `${r.id} (${r.phase})`))}`;
  },
  beginKeyRotation: (shard) => `count shard ${shard}'s object-storage secrets and read its encryption keys, to rotate them`,
  rotateSecretsPage: (input) => `re-encrypt up to ${count(input.limit, 'secret')} under key ${input.keyId}, ${input.startAfter ? `after ${input.startAfter}` : 'from the first'}`,
  collectGarbage: (request) => `collect orphan instances of shard ${request.shard} (older than ${Math.round(request.graceMs / 1000)} s)`,
  loadLeaderNetwork: (shard) => `read shard ${shard}'s leader network`,
  readLeaderEpoch: (shard) => `read shard ${shard}'s newest leader epoch`,
  moveLeaderNetwork: (req) => `attach ${req.interfaceId} to ${req.instanceId} (worker ${req.workerId}) at epoch ${req.epoch}`,
  writeLeaderRecord: (record) => `record worker ${record.workerId} as leader at epoch ${record.epoch}`,
  serveAsLeader: (input) => `worker ${input.workerId} serves as leader at epoch ${input.epoch}`,
  standBy: (input) => `worker ${input.workerId} stands by`,
};

/** The activities this table summarises (test/unit/activity-summaries.test.ts checks every one the workflows call is here). */
export const summarizedActivities: readonly string[] = Object.keys(summarizers);

/** The summary of one scheduled activity; its bare name for one this table does not know. */
export function activitySummary(activityType: string, args: readonly unknown[]): string {
  const summarize = (summarizers as Record<string, ((...a: unknown[]) => string) | undefined>)[activityType];
  if (!summarize) return summaryLine(activityType);
  try {
    return summaryLine(summarize(...args));
  } catch {
    // Arguments of an older shape (a replayed or legacy call): the name still says what it is.
    return summaryLine(activityType);
  }
}

/** For call sites that know why: "terminate i-… (expired-forced)". */
export function terminateSummary(ec2InstanceId: string, reason: string): string {
  return summaryLine(`terminate ${ec2InstanceId} (${reason})`);
}
