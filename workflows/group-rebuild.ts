/**
 * A group run that starts without carried state (the workflow was terminated or reset,
 * or a run failed on old code) must not create `size` new instances while the old ones
 * keep running. It first rebuilds its members from what exists: the group's running
 * instance workflows (visibility) and the EC2 instances tagged for it. Until that
 * succeeds it decides nothing; it retries with backoff and says why it waits.
 */
import { log, sleep } from '@temporalio/workflow';
import type { GroupRef } from '../common/types';
import { rebuildActivities } from './activity-options';
import { unpackMember } from './group-carry';
import { finishRebuild, type GroupState } from './group-state';
import { nextStepRetry, runStep } from './group-steps';

export async function rebuildMembers(ref: GroupRef, state: GroupState, loadSpec: () => Promise<void>, showProgress: () => void): Promise<void> {
  for (;;) {
    // The cluster id (from the spec) narrows the EC2 look-up to our own tags; a removed group has none and rebuilds without it.
    if (!state.spec && !state.removed) await loadSpec();
    if (state.spec || state.removed) {
      const found = await runStep(state.steps, 'rebuild', () => rebuildActivities.rebuildMembers({ ...ref, clusterId: state.spec?.clusterId }), { ...ref });
      if (found) {
        finishRebuild(state, found.members.map(unpackMember), Date.now());
        log.info('members rebuilt from visibility and EC2', { ...ref, members: found.members.length, ...found.sources });
        return;
      }
    }
    showProgress();
    const retryAt = nextStepRetry(state.steps) ?? Date.now() + 5_000;
    await sleep(Math.max(1, retryAt - Date.now()));
  }
}
