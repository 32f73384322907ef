/**
 * The domain's own Prometheus metrics (prom-client), recorded where the events happen:
 * the audit adapter (every lifecycle action is audited once, by activities and the agent
 * API alike), the AWS clients' error path, and the agent API's health tracker. Nothing
 * here is called from workflow code. One registry per process; the worker's /metrics
 * serves it with the Temporal SDK's own metrics (workers/metrics/server.ts).
 *
 * Labels are bounded: tenant and group (config-defined), reasons and error codes that code
 * defines (anything else is counted as "other"), never instance ids or free text.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { AuditEntry, RemovalReason } from '../../common/types';
import type { HandoffReason } from '../../workflows/decisions/leader';

export const domainRegistry = new Registry();
const registers = [domainRegistry];

const launches = new Counter({
  name: 'nstance_instance_launches_total',
  help: 'Instances launched (RunInstances succeeded; adopted="true" when a retried launch found what it had made)',
  labelNames: ['tenant', 'group', 'adopted'],
  registers,
});
const terminations = new Counter({
  name: 'nstance_instance_terminations_total',
  help: 'Instances terminated by their workflow, by the group\'s reason (scale-down, unhealthy, expired-forced, ...)',
  labelNames: ['tenant', 'group', 'reason'],
  registers,
});
const failures = new Counter({
  name: 'nstance_instance_failures_total',
  help: 'Instances that failed before serving (launch-failed, registration-timeout, target-registration-failed)',
  labelNames: ['tenant', 'group', 'reason'],
  registers,
});
const awsErrors = new Counter({
  name: 'nstance_aws_errors_total',
  help: 'AWS requests refused for capacity (kind="capacity") or throttled (kind="throttle"), by service, operation and error code',
  labelNames: ['service', 'operation', 'kind', 'code'],
  registers,
});
const agentRegistrations = new Counter({
  name: 'nstance_agent_registrations_total',
  help: 'Agent registrations accepted by this worker\'s agent API (kind="repeat": an agent asking again with its spent nonce)',
  labelNames: ['tenant', 'group', 'kind'],
  registers,
});
const agentRejections = new Counter({
  name: 'nstance_agent_rejections_total',
  help: 'Agent API requests refused, by action (agent.register.rejected, agent.auth.rejected, agent.rate-limited, ...)',
  labelNames: ['action'],
  registers,
});
const missedHealthReports = new Counter({
  name: 'nstance_agent_missed_health_reports_total',
  help: 'Instances marked unhealthy because their agent missed its health reports (the missed-interval limit)',
  registers,
});
const handoffs = new Counter({
  name: 'nstance_leader_handoffs_total',
  help: 'Leader handoffs recorded by the leader workflow, by reason',
  labelNames: ['reason'],
  registers,
});
const handoffDuration = new Histogram({
  name: 'nstance_leader_handoff_duration_seconds',
  help: 'From detecting the leader change to EC2 showing the leader ENI attached to the new leader',
  labelNames: ['reason'],
  buckets: [0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 60, 120],
  registers,
});
/** Every handoff reason, each a series from 0 (counter and histogram; see knownGroup). */
const HANDOFF_REASONS = ['initial', 'heartbeat-timeout', 'not-started', 'lease-lost', 'worker-shutdown', 'resigned', 'requested', 'failed'] as const satisfies readonly HandoffReason[];
/** Fails to compile when HandoffReason gains a reason the list above lacks. */
const everyHandoffListed: HandoffReason extends (typeof HANDOFF_REASONS)[number] ? true : never = true;
void everyHandoffListed;
for (const reason of HANDOFF_REASONS) {
  handoffs.inc({ reason }, 0);
  handoffDuration.zero({ reason });
}
const gcTerminations = new Counter({
  name: 'nstance_gc_terminations_total',
  help: 'Instances the garbage collector terminated (tagged, owned by no running workflow, past the grace period)',
  registers,
});
/**
 * Everything the garbage collector does, by action: orphans terminated by why they were orphans (no running
 * workflow owns them, a duplicate of what a running workflow owns, no instance-id tag), terminations EC2
 * refused (tried again next pass), and instance records deleted past their retention.
 */
export const GC_ACTIONS = ['orphan-terminated', 'duplicate-terminated', 'untagged-terminated', 'termination-refused', 'record-deleted'] as const;
export type GcAction = (typeof GC_ACTIONS)[number];
const gcActions = new Counter({
  name: 'nstance_gc_actions_total',
  help: `Garbage collector actions, by action (${GC_ACTIONS.join(', ')})`,
  labelNames: ['action'],
  registers,
});
// Each action's series from 0 (see knownGroup: a series born at 1 never rises for rate()).
for (const action of GC_ACTIONS) gcActions.inc({ action }, 0);
export const leaderEpochGauge = new Gauge({
  name: 'nstance_leader_epoch',
  help: 'Leadership epoch this worker holds or last held (absent before it ever led)',
  registers,
});
export const leaderGauge = new Gauge({
  name: 'nstance_leader',
  help: '1 while this worker leads its shard, else 0',
  registers,
});

/** A reason or code as a label: code-defined words pass, anything else (free text) is "other". */
export function boundedLabel(value: unknown): string {
  return typeof value === 'string' && /^[A-Za-z][A-Za-z0-9._-]{0,47}$/.test(value) ? value : 'other';
}

const FAILURE_PREFIXES: [RegExp, string][] = [[/^could not register in its target groups/, 'target-registration-failed']];

/** The reasons a member is terminated for (RemovalReason), each a series of its own per group. */
const TERMINATION_REASONS = ['scale-down', 'drain-requested', 'lost', 'unhealthy', 'termination-notice', 'replace-requested', 'expired-eligible', 'expired-forced', 'not-a-member', 'drift'] as const satisfies readonly RemovalReason[];
/** Fails to compile when RemovalReason gains a reason the list above lacks. */
const everyReasonListed: RemovalReason extends (typeof TERMINATION_REASONS)[number] ? true : never = true;
void everyReasonListed;
const FAILURE_REASONS = ['launch-failed', 'registration-timeout', 'target-registration-failed'] as const;
const groupsSeen = new Set<string>();

/**
 * Creates a group's labelled counter series at 0 (launches, terminations and failures by each reason), once per
 * process: a series that first appears at its first event, already 1, is one `rate()` and `increase()` never see
 * rise, so a dashboard or an alert would miss each group's first failure. Called for every group the group gauges
 * read and for every audited group.
 */
export function knownGroup(tenant: string, group: string): void {
  const key = `${tenant}/${group}`;
  if (groupsSeen.has(key)) return;
  groupsSeen.add(key);
  launches.inc({ tenant, group, adopted: 'false' }, 0);
  for (const reason of TERMINATION_REASONS) terminations.inc({ tenant, group, reason }, 0);
  for (const reason of FAILURE_REASONS) failures.inc({ tenant, group, reason }, 0);
}

/** Counts one audited action. Called once per audit object actually written (a retried write is not counted again). */
export function recordAudit(entry: AuditEntry): void {
  const tenant = entry.tenant ?? '';
  const group = entry.group ?? '';
  const details = entry.details ?? {};
  if (entry.tenant && entry.group) knownGroup(tenant, group);
  switch (entry.action) {
    case 'instance.create': {
      // A start batch's entry: one object for every instance it launched.
      const batch = typeof details.instances === 'object' && details.instances !== null ? Object.values(details.instances as Record<string, { adopted?: unknown }>) : [details];
      for (const launched of batch) launches.inc({ tenant, group, adopted: String(launched.adopted === true) });
      break;
    }
    case 'instance.terminate':
      terminations.inc({ tenant, group, reason: boundedLabel(details.reason) });
      break;
    case 'instance.failed': {
      const reason = String(details.reason ?? '');
      failures.inc({ tenant, group, reason: FAILURE_PREFIXES.find(([re]) => re.test(reason))?.[1] ?? 'launch-failed' });
      break;
    }
    case 'instance.registration-timeout':
      failures.inc({ tenant, group, reason: 'registration-timeout' });
      break;
    case 'agent.register':
      agentRegistrations.inc({ tenant, group, kind: details.repeatOfSpentNonce === true ? 'repeat' : 'new' });
      break;
    case 'leader-handoff': {
      const reason = boundedLabel(details.reason);
      handoffs.inc({ reason });
      if (typeof details.durationMs === 'number' && details.durationMs >= 0) handoffDuration.observe({ reason }, details.durationMs / 1000);
      break;
    }
    case 'gc.terminate': {
      gcTerminations.inc();
      // Entries from before kinds were audited: an orphan of no running workflow, the kind they all were then.
      const kind = `${typeof details.kind === 'string' ? details.kind : 'orphan'}-terminated`;
      gcActions.inc({ action: (GC_ACTIONS as readonly string[]).includes(kind) ? kind : 'orphan-terminated' });
      break;
    }
    default:
      break;
  }
}

/** Counts GC actions that leave no audit entry of their own (terminations are counted from theirs). */
export function recordGcAction(action: Exclude<GcAction, `${string}-terminated`>, count = 1): void {
  if (count > 0) gcActions.inc({ action }, count);
}

export function recordAgentRejection(action: string): void {
  agentRejections.inc({ action: boundedLabel(action) });
}

export function recordMissedHealthReports(): void {
  missedHealthReports.inc();
}

const THROTTLE_CODES = new Set(['RequestLimitExceeded', 'Throttling', 'ThrottlingException', 'TooManyRequestsException', 'SlowDown', 'RequestThrottled', 'RequestThrottledException']);
const CAPACITY_CODES = new Set(['InsufficientInstanceCapacity', 'InstanceLimitExceeded', 'VcpuLimitExceeded', 'InsufficientAddressCapacity', 'InsufficientFreeAddressesInSubnet', 'MaxSpotInstanceCountExceeded', 'SpotMaxPriceTooLow']);

/** Whether an AWS error code is a throttle or a capacity refusal (the two kinds worth alerting on), else undefined. */
export function awsErrorKind(code: string): 'throttle' | 'capacity' | undefined {
  if (THROTTLE_CODES.has(code)) return 'throttle';
  if (CAPACITY_CODES.has(code)) return 'capacity';
  return undefined;
}

/**
 * The refusals worth an alert from their first occurrence, as series from 0 (see knownGroup): capacity and
 * throttling of the EC2 calls every launch makes, and throttling of the calls that scale with the fleet.
 */
const EXPECTED_AWS_ERRORS: [service: string, operation: string, code: string][] = [
  ...[...CAPACITY_CODES].filter((c) => !c.startsWith('Spot') && !c.startsWith('MaxSpot')).map((code): [string, string, string] => ['EC2', 'RunInstances', code]),
  ...['RunInstances', 'DescribeInstances', 'TerminateInstances', 'DescribeSubnets', 'CreateTags'].map((operation): [string, string, string] => ['EC2', operation, 'RequestLimitExceeded']),
  ...['RegisterTargets', 'DeregisterTargets', 'DescribeTargetHealth'].map((operation): [string, string, string] => ['ElasticLoadBalancingV2', operation, 'Throttling']),
];
for (const [service, operation, code] of EXPECTED_AWS_ERRORS) awsErrors.inc({ service: boundedLabel(service), operation, kind: awsErrorKind(code) as string, code }, 0);

export function recordAwsError(service: string, operation: string, code: string): void {
  const kind = awsErrorKind(code);
  if (kind) awsErrors.inc({ service: boundedLabel(service), operation: boundedLabel(operation), kind, code });
}
