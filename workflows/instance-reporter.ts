import { getExternalWorkflowHandle, isCancellation, log, setCurrentDetails, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { searchAttributeUpdates } from '../common/search-attributes';
import type { InstanceUpdate, InstanceWorkflowInput, Phase } from '../common/types';
import { auditActivities } from './activity-options';
import { instanceDetails } from './current-details';
import { instanceUpdateSignal } from './definitions';
import { errorMessage } from '../common/failures';

/** An instance workflow's status, and the three places each change goes: search attributes, its group, the audit log. */
export class InstanceReporter {
  readonly status: InstanceUpdate;

  constructor(private readonly input: InstanceWorkflowInput) {
    // A continued run starts from where the last one left off.
    this.status = input.resume ? { ...input.resume.status } : { instanceId: input.instanceId, phase: 'provisioning' };
    this.showDetails();
  }

  /** The Web UI's current details (not history: workflow metadata, read by the UI's query). */
  showDetails(): void {
    setCurrentDetails(instanceDetails(this.status));
  }

  set(change: Partial<InstanceUpdate>): void {
    Object.assign(this.status, change);
    this.showDetails();
  }

  /**
   * Records a phase. The group is told unless `tellGroup` is false: phases it
   * does not act on (registered, terminating) stay out of its history.
   */
  async transition(phase: Phase, change: Partial<InstanceUpdate> = {}, options: { tellGroup?: boolean } = {}): Promise<void> {
    Object.assign(this.status, change, { phase });
    this.showDetails();
    upsertSearchAttributes(searchAttributeUpdates({ NstancePhase: phase, NstanceInstanceId: this.status.ec2InstanceId }));
    if (options.tellGroup !== false) await this.notify();
  }

  async notify(): Promise<void> {
    this.showDetails();
    try {
      await getExternalWorkflowHandle(this.input.groupWorkflowId).signal(instanceUpdateSignal, { ...this.status });
    } catch (err) {
      if (isCancellation(err)) throw err;
      // The group is gone (removed from config): nothing to tell.
      log.warn('group workflow not reachable', { groupWorkflowId: this.input.groupWorkflowId, error: errorMessage(err) });
    }
  }

  async audit(action: string, details?: Record<string, unknown>): Promise<void> {
    await auditActivities.writeAudit({
      shard: this.input.shard,
      action,
      actor: 'nstance',
      at: new Date(Date.now()).toISOString(),
      workflowId: workflowInfo().workflowId,
      tenant: this.input.tenant,
      group: this.input.group,
      instanceIds: [this.input.instanceId],
      ec2InstanceIds: this.status.ec2InstanceId ? [this.status.ec2InstanceId] : [],
      details,
    });
  }
}
