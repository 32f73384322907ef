import { defineSearchAttributeKey, SearchAttributeType, type SearchAttributePair } from '@temporalio/common';
import type { SearchAttributeName } from './names';

/** Typed keys for the project's search attributes (all Keyword), usable in workflows and clients. */
export const SA = {
  NstanceShard: defineSearchAttributeKey('NstanceShard', SearchAttributeType.KEYWORD),
  NstanceGroup: defineSearchAttributeKey('NstanceGroup', SearchAttributeType.KEYWORD),
  NstanceInstanceId: defineSearchAttributeKey('NstanceInstanceId', SearchAttributeType.KEYWORD),
  NstancePhase: defineSearchAttributeKey('NstancePhase', SearchAttributeType.KEYWORD),
} as const;

export function searchAttributeUpdates(values: Partial<Record<SearchAttributeName, string>>): SearchAttributePair[] {
  return Object.entries(values)
    .filter((e): e is [SearchAttributeName, string] => e[1] !== undefined)
    .map(([name, value]) => ({ key: SA[name], value }));
}

/** A value quoted for a visibility query (list filter): backslashes and quotes escaped. */
export function queryLiteral(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** The visibility query for a shard's running workflows of one type. */
export function runningInShard(workflowType: string, shard: string): string {
  return `WorkflowType = ${queryLiteral(workflowType)} AND ExecutionStatus = 'Running' AND NstanceShard = ${queryLiteral(shard)}`;
}
