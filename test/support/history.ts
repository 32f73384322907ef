/** Reading back what a workflow's history holds: signals with their arguments and when the server recorded them. */
import type { temporal } from '@temporalio/proto';
import type { Client } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import { optionalTsToMs } from '@temporalio/common/lib/time';
import { decodedPayload } from './payloads';

export interface RecordedSignal<T> {
  arg: T;
  /** Server time the signal was recorded (ms). */
  at: number;
}

/** The `name` signals in a workflow's history, oldest first. */
export async function signalsIn<T>(client: Client, workflowId: string, name: string): Promise<RecordedSignal<T>[]> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const found: RecordedSignal<T>[] = [];
  for (const e of history.events ?? []) {
    const a = e.workflowExecutionSignaledEventAttributes;
    const payload = a?.input?.payloads?.[0];
    if (a?.signalName === name && payload) found.push({ arg: await decodedPayload<T>(client, [payload as Payload]), at: optionalTsToMs(e.eventTime) ?? 0 });
  }
  return found;
}

/** Server time a workflow was started (ms). */
export async function startedAt(client: Client, workflowId: string): Promise<number> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  return optionalTsToMs(history.events?.[0]?.eventTime) ?? 0;
}

/** The patch ids a history's markers record (core writes each id as plain JSON, whatever the codec). */
export function patchIdsIn(history: temporal.api.history.v1.IHistory): string[] {
  return (history.events ?? [])
    .filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_patch')
    .flatMap((e) => e.markerRecordedEventAttributes?.details?.['patch-data']?.payloads ?? [])
    .map((p) => (JSON.parse(Buffer.from(p.data ?? new Uint8Array()).toString('utf8')) as { id?: string }).id ?? '');
}
