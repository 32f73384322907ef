import { continueAsNew, log, proxyActivities, setCurrentDetails, sleep, upsertSearchAttributes, workflowInfo, type ActivityOptions } from '@temporalio/workflow';
import { searchAttributeUpdates } from '../common/search-attributes';
import type { Activities } from '../activities';
import { configActivities } from './activity-options';
import { gcDetails, type GcPassView } from './current-details';

/** A pass's activity options (part of its commands: change them only behind patched()). The GC benchmark runs passes with them too. */
export const collectGarbageOptions: ActivityOptions = {
  startToCloseTimeout: '10m',
  heartbeatTimeout: '1m',
  retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '2m', maximumAttempts: 3 },
};

const gc = proxyActivities<Pick<Activities, 'collectGarbage'>>(collectGarbageOptions);

export interface GcWorkflowInput {
  shard: string;
}

/**
 * The shard's garbage collector (a singleton by workflow id): every
 * garbage_collection.interval it terminates tagged instances that no running
 * instance workflow owns and that are older than the grace period
 * (garbage_collection.registration_timeout), so a just-launched instance is
 * never collected.
 */
export async function gcWorkflow(input: GcWorkflowInput): Promise<void> {
  upsertSearchAttributes(searchAttributeUpdates({ NstanceShard: input.shard }));
  for (;;) {
    let intervalMs = 120_000;
    const pass: GcPassView = { at: new Date(Date.now()).toISOString(), collected: [], nextAt: '' };
    try {
      const settings = await configActivities.loadShardSettings(input.shard);
      intervalMs = settings.gcIntervalMs;
      const collected = await gc.collectGarbage({
        shard: input.shard,
        clusterId: settings.clusterId,
        graceMs: settings.gcGraceMs,
        // Absent from settings read by a worker from before instance records: the activity's default then.
        ...(settings.recordRetentionMs !== undefined ? { recordRetentionMs: settings.recordRetentionMs } : {}),
        at: new Date(Date.now()).toISOString(),
      });
      pass.collected = collected;
      if (collected.length > 0) log.warn('garbage collected orphan instances', { collected });
    } catch (err) {
      pass.error = String(err);
      log.warn('garbage collection pass failed; trying again next interval', { error: String(err) });
    }
    pass.nextAt = new Date(Date.now() + intervalMs).toISOString();
    setCurrentDetails(gcDetails(pass));
    await sleep(intervalMs);
    if (workflowInfo().continueAsNewSuggested) await continueAsNew<typeof gcWorkflow>(input);
  }
}
