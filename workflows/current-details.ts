/**
 * The Web UI's "current details" of the long-lived workflows besides the group's
 * (workflows/group-status.ts): what the run is at now, in Temporal's markdown subset.
 * Pure text from plain state; setting them adds nothing to history.
 */
import type { InstanceUpdate } from '../common/types';
import type { LeaderStatus } from './decisions/leader';

function lines(rows: [string, string | number | undefined][]): string {
  return rows
    .filter((row): row is [string, string | number] => row[1] !== undefined && row[1] !== '')
    .map(([name, value]) => `**${name}:** ${value}`)
    .join('\n');
}

export function instanceDetails(status: InstanceUpdate): string {
  return lines([
    ['phase', status.phase],
    ['EC2 instance', status.ec2InstanceId],
    ['private IP', status.privateIp],
    ['launched', status.launchedAt],
    ['health', status.health],
    ['termination notice', status.noticeDeadline && `reclaimed at ${status.noticeDeadline}`],
    ['expiry', status.expiry],
    ['error', status.error],
  ]);
}

export function leaderDetails(status: LeaderStatus): string {
  const live = status.candidates.filter((c) => c.alive && !c.leaving).map((c) => c.workerId);
  const last = status.lastHandoff;
  return lines([
    ['leader', status.leader ? `${status.leader.workerId} (${status.leader.ec2InstanceId ?? 'no EC2 instance'}) since ${status.leader.since}` : 'none'],
    ['epoch', status.epoch],
    ['leader network', status.interfaceId],
    ['candidates', `${live.length} live${live.length > 0 ? ` (${live.join(', ')})` : ''} of ${status.candidates.length}`],
    ['handoffs', status.handoffs],
    [
      'last handoff',
      last && `${last.from ?? '-'} → ${last.to} at epoch ${last.epoch} (${last.reason})${last.durationMs !== undefined ? `, ENI attached in ${last.durationMs} ms` : ''}`,
    ],
    ['network repair', status.networkRepair && `attempt ${status.networkRepair.attempts}: ${status.networkRepair.error}`],
    ['last error', status.lastError],
  ]);
}

export interface GcPassView {
  at: string;
  collected: { ec2InstanceId: string; why: string }[];
  error?: string;
  nextAt: string;
}

export function gcDetails(pass: GcPassView): string {
  const collected = pass.collected.slice(0, 5).map((o) => `${o.ec2InstanceId} (${o.why})`);
  const more = pass.collected.length > 5 ? ` and ${pass.collected.length - 5} more` : '';
  return lines([
    ['last pass', pass.at],
    ['terminated', pass.collected.length === 0 ? 'nothing' : `${pass.collected.length}: ${collected.join(', ')}${more}`],
    ['error', pass.error],
    ['next pass', pass.nextAt],
  ]);
}
