/**
 * Workflow interceptors, bundled with the workflows (see workers/workflow-interceptors.ts):
 * every scheduled activity gets a summary for the Web UI (workflows/activity-summaries.ts)
 * unless its call site gave one.
 */
import type { ActivityInput, Next, WorkflowInterceptorsFactory, WorkflowOutboundCallsInterceptor } from '@temporalio/workflow';
import { activitySummary } from './activity-summaries';

class ActivitySummaries implements WorkflowOutboundCallsInterceptor {
  scheduleActivity(input: ActivityInput, next: Next<WorkflowOutboundCallsInterceptor, 'scheduleActivity'>): Promise<unknown> {
    if (input.options.summary) return next(input);
    return next({ ...input, options: { ...input.options, summary: activitySummary(input.activityType, input.args) } });
  }
}

export const interceptors: WorkflowInterceptorsFactory = () => ({ outbound: [new ActivitySummaries()] });
