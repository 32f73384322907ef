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
