/**
 * What the key-rotation workflow and its clients (`nstance secrets rotate-key`, the Web UI) share:
 * its id, input, progress query and the activities' shapes. No key material ever appears here:
 * keys are named by their id (a digest), and only counts and secret names cross into history.
 */
import { defineQuery } from '@temporalio/workflow';

export function keyRotationWorkflowId(shard: string): string {
  return `nstance:${shard}:secrets:rotate-key`;
}

/** What beginKeyRotation found: the key to rotate to, the keys being left, how many secrets. */
export interface KeyRotationPlan {
  keyId: string;
  oldKeyIds: string[];
  /** Where the secrets are, e.g. s3://bucket/cluster/secret/. */
  location: string;
  total: number;
}

export interface KeyRotationPageInput {
  shard: string;
  /** The key the rotation started for: a config naming another key fails the page (non-retryable). */
  keyId: string;
  startAfter?: string;
  limit: number;
}

export interface KeyRotationPage {
  scanned: number;
  /** Re-encrypted under the current key by this page. */
  rewritten: number;
  /** Already under the current key. */
  current: number;
  /** Deleted between listing and reading. */
  missing: number;
  /** Readable by no configured key (at most 20 names kept). */
  unreadable: string[];
  unreadableCount: number;
  /** The cursor for the next page; absent after the last. */
  next?: string;
}

export interface KeyRotationTotals {
  scanned: number;
  rewritten: number;
  current: number;
  missing: number;
  unreadable: number;
}

export interface KeyRotationProgress {
  phase: 'planning' | 'rotating' | 'verifying' | 'done' | 'incomplete';
  /** 1: re-encrypt; 2 and later: verify that nothing is left under an old key (and fix what is). */
  pass: number;
  plan?: KeyRotationPlan;
  /** This pass so far. */
  pass_totals: KeyRotationTotals;
  /** Every pass, every run (continue-as-new carries them). */
  totals: KeyRotationTotals;
  cursor?: string;
  unreadable: string[];
  runs: number;
}

export interface KeyRotationInput {
  shard: string;
  actor: string;
  /** Secrets per page (one activity), default 100. */
  pageSize?: number;
  /** Pages per workflow run before it continues as new with its cursor, default 50. */
  pagesPerRun?: number;
  /** Set by continue-as-new. */
  carried?: { progress: KeyRotationProgress; startedAt: string };
}

export interface KeyRotationResult {
  status: 'done' | 'incomplete';
  keyId: string;
  /** Summed over every pass. */
  totals: KeyRotationTotals;
  /** The final pass: rewritten 0 and unreadable 0 when done. */
  lastPass: KeyRotationTotals;
  passes: number;
  unreadable: string[];
}

export const keyRotationProgressQuery = defineQuery<KeyRotationProgress>('keyRotationProgress');

export const emptyTotals = (): KeyRotationTotals => ({ scanned: 0, rewritten: 0, current: 0, missing: 0, unreadable: 0 });
