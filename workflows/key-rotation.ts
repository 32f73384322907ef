/**
 * `nstance secrets rotate-key`: re-encrypts every object-storage secret under
 * cluster.secrets.encryption_key, page by page (one activity per page, a cursor between them),
 * then passes over everything again until a pass finds nothing left under an old key. Safe to
 * kill at any point: each secret is replaced in one conditional write by ciphertext already
 * checked to open with the new key, and the old keys keep decrypting (they stay in
 * old_encryption_keys until the operator removes them), so no secret is ever readable by neither.
 * A retried page skips what is done; a long rotation continues as new with its cursor.
 */
import { continueAsNew, log, proxyActivities, setCurrentDetails, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { searchAttributeUpdates } from '../common/search-attributes';
import { auditActivities } from './activity-options';
import {
  emptyTotals,
  keyRotationProgressQuery,
  type KeyRotationInput,
  type KeyRotationPage,
  type KeyRotationProgress,
  type KeyRotationResult,
  type KeyRotationTotals,
} from './key-rotation-api';

const retry = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 20 } as const;

/** A page heartbeats per secret: a killed worker's page is retried elsewhere within the heartbeat timeout. */
const rotation = proxyActivities<Pick<Activities, 'beginKeyRotation' | 'rotateSecretsPage'>>({
  startToCloseTimeout: '10m',
  heartbeatTimeout: '20s',
  retry,
});

/** Passes at most: the first re-encrypts, later ones verify (and catch writers still on an old key). */
const MAX_PASSES = 5;

function add(into: KeyRotationTotals, page: KeyRotationPage): void {
  into.scanned += page.scanned;
  into.rewritten += page.rewritten;
  into.current += page.current;
  into.missing += page.missing;
  into.unreadable += page.unreadableCount;
}

function describe(p: KeyRotationProgress): string {
  const total = p.plan?.total ?? 0;
  return [
    `**Key rotation** to key \`${p.plan?.keyId ?? '?'}\` (${p.phase}, pass ${p.pass})`,
    `${p.pass_totals.scanned} / ${total} secrets this pass; ${p.totals.rewritten} re-encrypted in all, ${p.totals.unreadable} unreadable`,
    p.plan ? `from keys ${p.plan.oldKeyIds.map((k) => `\`${k}\``).join(', ') || '(none configured)'} at ${p.plan.location}` : '',
  ].join('\n\n');
}

export async function keyRotationWorkflow(input: KeyRotationInput): Promise<KeyRotationResult> {
  upsertSearchAttributes(searchAttributeUpdates({ NstanceShard: input.shard }));
  const pageSize = input.pageSize ?? 100;
  const pagesPerRun = input.pagesPerRun ?? 50;
  const startedAt = input.carried?.startedAt ?? new Date(Date.now()).toISOString();
  const progress: KeyRotationProgress = input.carried
    ? { ...input.carried.progress, runs: input.carried.progress.runs + 1 }
    : { phase: 'planning', pass: 1, pass_totals: emptyTotals(), totals: emptyTotals(), unreadable: [], runs: 1 };
  setHandler(keyRotationProgressQuery, () => progress);

  if (!progress.plan) {
    progress.plan = await rotation.beginKeyRotation(input.shard);
    progress.phase = 'rotating';
    await auditActivities.writeAudit({
      shard: input.shard,
      action: 'secrets.rotate-key.started',
      actor: input.actor,
      at: startedAt,
      workflowId: workflowInfo().workflowId,
      details: { keyId: progress.plan.keyId, oldKeyIds: progress.plan.oldKeyIds, location: progress.plan.location, total: progress.plan.total },
    });
  }
  const plan = progress.plan;
  setCurrentDetails(describe(progress));

  let pagesThisRun = 0;
  for (;;) {
    const page = await rotation.rotateSecretsPage({ shard: input.shard, keyId: plan.keyId, startAfter: progress.cursor, limit: pageSize });
    add(progress.pass_totals, page);
    add(progress.totals, page);
    for (const name of page.unreadable) if (progress.unreadable.length < 20 && !progress.unreadable.includes(name)) progress.unreadable.push(name);
    progress.cursor = page.next;
    pagesThisRun++;
    if (progress.cursor === undefined) {
      // End of a pass. Done when it re-encrypted nothing; otherwise pass again to verify.
      const clean = progress.pass_totals.rewritten === 0;
      if (clean || progress.pass >= MAX_PASSES) break;
      progress.pass++;
      progress.phase = 'verifying';
      progress.pass_totals = emptyTotals();
    }
    setCurrentDetails(describe(progress));
    if (pagesThisRun >= pagesPerRun || workflowInfo().continueAsNewSuggested) {
      await continueAsNew<typeof keyRotationWorkflow>({ ...input, carried: { progress, startedAt } });
    }
  }

  const incomplete = progress.pass_totals.rewritten > 0 || progress.pass_totals.unreadable > 0;
  progress.phase = incomplete ? 'incomplete' : 'done';
  setCurrentDetails(describe(progress));
  const result: KeyRotationResult = {
    status: incomplete ? 'incomplete' : 'done',
    keyId: plan.keyId,
    totals: progress.totals,
    lastPass: progress.pass_totals,
    passes: progress.pass,
    unreadable: progress.unreadable,
  };
  await auditActivities.writeAudit({
    shard: input.shard,
    action: 'secrets.rotate-key.finished',
    actor: input.actor,
    at: new Date(Date.now()).toISOString(),
    workflowId: workflowInfo().workflowId,
    details: { ...result, oldKeyIds: plan.oldKeyIds, startedAt },
  });
  if (incomplete) log.warn('key rotation finished with secrets not under the new key', { unreadable: progress.unreadable, last: progress.pass_totals });
  return result;
}
