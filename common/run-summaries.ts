/**
 * What the Temporal Web UI shows for each run before anyone opens a payload: the static
 * summary (one line, in the list and at the top of a run's page) and static details
 * (Temporal's markdown subset, the run's "User Metadata"). Pure text, shared by every
 * place that starts a workflow (the CLI, the group's start activity, the leadership
 * participant); the workflows keep their current details up to date themselves.
 */
import type { GroupRef, InstanceWorkflowInput } from './types';

export interface RunMetadata {
  staticSummary: string;
  staticDetails: string;
}

/** The UI shows summaries on one line: keep them short whatever a caller passes in. */
const MAX_SUMMARY = 200;

function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > MAX_SUMMARY ? `${flat.slice(0, MAX_SUMMARY - 1)}…` : flat;
}

function details(rows: [string, string | number | undefined][]): string {
  return rows
    .filter((row): row is [string, string | number] => row[1] !== undefined && row[1] !== '')
    .map(([name, value]) => `**${name}:** ${value}`)
    .join('\n');
}

/** What a group's start knows about it (from config); both optional: a signal to wake it may not. */
export interface GroupFacts {
  size?: number;
  template?: string;
}

export function groupRunMetadata(ref: GroupRef, facts: GroupFacts = {}): RunMetadata {
  const size = facts.size === undefined ? '' : ` · size ${facts.size}`;
  const template = facts.template ? ` · template ${facts.template}` : '';
  return {
    staticSummary: oneLine(`group ${ref.tenant}/${ref.group}${size}${template}`),
    staticDetails: details([
      ['group', `${ref.tenant}/${ref.group}`],
      ['shard', ref.shard],
      ['size at start', facts.size],
      ['template', facts.template],
      ['keeps', 'the group at its size, for ever (continues as new); its current details show the counts now'],
    ]),
  };
}

export function instanceRunMetadata(input: InstanceWorkflowInput): RunMetadata {
  const { launch } = input;
  const template = launch.template ? ` · template ${launch.template}` : '';
  const images = Object.values(input.imageIds ?? {}).join(', ');
  return {
    staticSummary: oneLine(`instance ${input.instanceId} of ${input.tenant}/${input.group} · kind ${launch.kind}${template} · ${launch.instanceType}`),
    staticDetails: details([
      ['instance', input.instanceId],
      ['group', `${input.tenant}/${input.group}`],
      ['shard', input.shard],
      ['kind', launch.kind],
      ['template', launch.template],
      ['instance type', launch.instanceType],
      ['arch', launch.arch],
      ['subnet pool', `${launch.subnetPool} (${launch.subnetIds.join(', ') || 'no subnets'})`],
      ['image', images || undefined],
      ['target groups', input.lifecycle?.targetGroups.map((tg) => `${tg.arn}:${tg.port}`).join(', ')],
    ]),
  };
}

export function leaderRunMetadata(shard: string, heartbeatTimeoutMs: number): RunMetadata {
  return {
    staticSummary: oneLine(`leader of shard ${shard}`),
    staticDetails: details([
      ['shard', shard],
      ['heartbeat timeout', `${heartbeatTimeoutMs} ms`],
      ['does', 'chooses the leader among live workers, moves the leader ENI to it, fences the old one; current details show who leads at which epoch'],
    ]),
  };
}

export function gcRunMetadata(shard: string): RunMetadata {
  return {
    staticSummary: oneLine(`garbage collector of shard ${shard}`),
    staticDetails: details([
      ['shard', shard],
      ['does', 'every garbage_collection.interval, terminates tagged instances no running workflow owns (older than registration_timeout)'],
    ]),
  };
}

export function keyRotationRunMetadata(shard: string, actor: string, pageSize?: number): RunMetadata {
  return {
    staticSummary: oneLine(`nstance secrets rotate-key (shard ${shard}, by ${actor})`),
    staticDetails: details([
      ['shard', shard],
      ['started by', actor],
      ['page size', pageSize === undefined ? undefined : `${pageSize} secrets per activity`],
      ['does', 're-encrypts every object-storage secret under cluster.secrets.encryption_key, then passes again until a pass re-encrypts nothing; current details show the pass and its counts'],
    ]),
  };
}

/** Activity and command summaries: one line, bounded. */
export function summaryLine(text: string): string {
  return oneLine(text);
}
