import { Context } from '@temporalio/activity';
import { instanceWorkflowId, s3Keys } from '../common/names';
import type { ActivityDeps } from './deps';
import { defaultEc2RateLimits } from '../adapters/aws/token-bucket';
import { terminateInstanceBatch, TERMINATE_BATCH_SIZE } from '../adapters/ec2/terminate-batch';
import { inParallel } from './gc/parallel';
import { resumableProgress, ProgressReporter, startProgress, type GcProgress, type Orphan } from './gc/progress';
import { judgeSuspect, sortTagged, type Suspect } from './gc/suspects';
import { GC_DESCRIBE_PAGE_SIZE, taggedInstances } from './gc/tagged-instances';
import { writeAudit } from '../adapters/s3/audit';
import { ObjectStore } from '../adapters/s3/objects';
import { deleteInstanceRecords, expiredRecords, listInstanceRecords } from '../adapters/s3/instance-records';
import { latestInstanceRun, runningInstanceOwners, type InstanceRun } from '../adapters/temporal/workflow-status';
import { recordGcAction } from '../adapters/metrics/domain-metrics';

export { GC_DESCRIBE_PAGE_SIZE };
export type { GcCounts, GcProgress, Orphan } from './gc/progress';

export interface GcRequest {
  shard: string;
  clusterId: string;
  /**
   * An instance younger than this is never collected, owned or not: a margin for a just-launched
   * instance on top of the ownership check (garbage_collection.registration_timeout).
   */
  graceMs: number;
  at: string;
  /** Instance records of ended instances are deleted once older than this (default 30 minutes, Nstance's). */
  recordRetentionMs?: number;
}

const DEFAULT_RECORD_RETENTION_MS = 30 * 60_000;

/** Describes in flight at once while confirming suspects, and audit objects written at once. */
const DESCRIBE_CONCURRENCY = 16;
const AUDIT_CONCURRENCY = 16;

/**
 * The garbage collector's one activity: find tagged instances no live workflow owns, and terminate
 * them. A pass lists the shard's tagged instances (EC2, paginated) and, at the same time, its running
 * instance workflows (visibility, paginated), describes only the suspects (past the grace, and not owned as
 * visibility shows it) to confirm them consistently, then terminates the orphans in batches, one
 * audit object each. It heartbeats its progress throughout, and a retried attempt goes on from it.
 */
export function createGcActivities(deps: ActivityDeps) {
  const limits = deps.ec2Limits ?? defaultEc2RateLimits();
  const objects = new ObjectStore({ s3: deps.aws.s3, bucket: deps.bucket });
  const pageSize = deps.gcDescribePageSize ?? GC_DESCRIBE_PAGE_SIZE;

  /**
   * Both listings at once: EC2's is most of a pass, and their order does not matter, since nothing
   * is collected on a listing's word alone (a suspect is confirmed by describe).
   */
  async function list(request: GcRequest, progress: GcProgress, reporter: ProgressReporter): Promise<void> {
    const { counts } = progress;
    const listingInstances = taggedInstances({
      ec2: deps.aws.ec2,
      limits,
      clusterId: request.clusterId,
      shard: request.shard,
      pageSize,
      onPage: (pages, found) => {
        Object.assign(counts, { ec2Pages: pages, tagged: found });
        reporter.report(progress, true);
      },
    });
    const listingOwners = runningInstanceOwners(deps.temporal, request.shard, (pages, found) => {
      Object.assign(counts, { ownerPages: pages, owners: found });
      reporter.report(progress, true);
    });
    const [instances, owners] = await Promise.all([listingInstances, listingOwners]);
    const sorted = sortTagged(instances, owners, Date.now(), request.graceMs);
    Object.assign(counts, { young: sorted.young, owned: sorted.owned, suspects: sorted.suspects.length });
    progress.phase = 'confirming';
    progress.pending = sorted.suspects;
    reporter.report(progress, true);
  }

  /** Describes each pending suspect's workflow (once per instance id) and keeps those it confirms. */
  async function confirm(request: GcRequest, progress: GcProgress, reporter: ProgressReporter, ctx: Context): Promise<void> {
    const runs = new Map<string, Promise<InstanceRun>>();
    const runOf = (instanceId: string): Promise<InstanceRun> => {
      let run = runs.get(instanceId);
      if (!run) {
        progress.counts.described += 1;
        run = latestInstanceRun(deps.temporal, instanceWorkflowId(request.shard, instanceId));
        runs.set(instanceId, run);
      }
      return run;
    };
    while (progress.pending.length > 0) {
      ctx.cancellationSignal.throwIfAborted();
      const chunk = progress.pending.slice(0, DESCRIBE_CONCURRENCY * 4);
      const decided = await inParallel(chunk, DESCRIBE_CONCURRENCY, async (suspect: Suspect) => ({
        suspect,
        verdict: judgeSuspect(suspect, suspect.instanceId ? await runOf(suspect.instanceId) : undefined),
      }));
      for (const { suspect, verdict } of decided) if (verdict) progress.orphans.push({ ...suspect, ...verdict });
      progress.pending = progress.pending.slice(chunk.length);
      progress.counts.orphans = progress.orphans.length;
      reporter.report(progress);
    }
    progress.phase = 'terminating';
    reporter.report(progress, true);
  }

  async function audit(request: GcRequest, orphan: Orphan): Promise<void> {
    await writeAudit(
      objects,
      {
        shard: request.shard,
        action: 'gc.terminate',
        actor: 'garbage-collector',
        at: request.at,
        instanceIds: orphan.instanceId ? [orphan.instanceId] : [],
        ec2InstanceIds: [orphan.ec2InstanceId],
        details: { why: orphan.why, kind: orphan.kind ?? 'orphan', launchedAt: orphan.launchedAt },
      },
      `gc/${request.shard}/${orphan.ec2InstanceId}`,
    );
  }

  /** Terminates the orphans not yet handled, a batch at a time, and audits each one terminated. */
  async function terminate(request: GcRequest, progress: GcProgress, reporter: ProgressReporter, ctx: Context): Promise<void> {
    const { counts } = progress;
    while (counts.handled < progress.orphans.length) {
      ctx.cancellationSignal.throwIfAborted();
      const batch = progress.orphans.slice(counts.handled, counts.handled + TERMINATE_BATCH_SIZE);
      const outcome = await terminateInstanceBatch({ ec2: deps.aws.ec2, limits }, batch.map((o) => o.ec2InstanceId));
      const terminated = new Set(outcome.terminated);
      await inParallel(batch.filter((o) => terminated.has(o.ec2InstanceId)), AUDIT_CONCURRENCY, (orphan) => audit(request, orphan));
      recordGcAction('termination-refused', outcome.refused.length);
      for (const { ec2InstanceId, error } of outcome.refused) {
        progress.refused.push(ec2InstanceId);
        ctx.log.warn('garbage collection: EC2 refused to terminate an orphan; the next pass tries again', { ec2InstanceId, error });
      }
      Object.assign(counts, {
        handled: counts.handled + batch.length,
        terminated: counts.terminated + outcome.terminated.length,
        refused: counts.refused + outcome.refused.length,
        terminateCalls: counts.terminateCalls + outcome.calls,
      });
      reporter.report(progress, true);
    }
    progress.phase = 'done';
  }

  /** Deletes instance records past their retention whose instance workflow no longer runs. Never fails the pass. */
  async function sweepRecords(request: GcRequest, ctx: Context): Promise<void> {
    try {
      const store = { s3: deps.aws.s3, bucket: deps.bucket };
      const records = await listInstanceRecords(store, request.shard);
      const retention = request.recordRetentionMs ?? DEFAULT_RECORD_RETENTION_MS;
      const old = expiredRecords(records, new Set(), Date.now(), retention);
      if (old.length === 0) return;
      const running = new Set((await runningInstanceOwners(deps.temporal, request.shard)).keys());
      const expired = expiredRecords(old, running, Date.now(), retention);
      if (expired.length === 0) return;
      // With each record, the instance's kept certificate files (absent for most: deleting none is no error).
      await deleteInstanceRecords(store, expired.flatMap((r) => [r.key, s3Keys.certificateFiles(request.shard, r.id)]));
      const deleted = expired.length;
      recordGcAction('record-deleted', deleted);
      ctx.log.info('garbage collection: instance records past retention deleted', { shard: request.shard, deleted });
    } catch (err) {
      ctx.log.warn('garbage collection: instance records not swept; the next pass tries again', { shard: request.shard, error: String(err) });
    }
  }

  return {
    async collectGarbage(request: GcRequest): Promise<Orphan[]> {
      const ctx = Context.current();
      const reporter = new ProgressReporter((details) => ctx.heartbeat(details));
      const resumed = resumableProgress(ctx.info.heartbeatDetails);
      const progress = resumed ?? startProgress();
      if (!resumed) await list(request, progress, reporter);
      ctx.cancellationSignal.throwIfAborted();
      if (progress.phase === 'confirming') await confirm(request, progress, reporter, ctx);
      if (progress.phase === 'terminating') await terminate(request, progress, reporter, ctx);
      reporter.report(progress, true);
      // A quiet pass (the usual one) logs at debug level only: every interval, for every shard.
      const eventful = resumed !== undefined || progress.orphans.length > 0;
      (eventful ? ctx.log.info : ctx.log.debug).call(ctx.log, 'garbage collection pass', { shard: request.shard, resumed: resumed !== undefined, ...progress.counts });
      await sweepRecords(request, ctx);
      const refused = new Set(progress.refused);
      return progress.orphans.filter((o) => !refused.has(o.ec2InstanceId));
    },
  };
}
