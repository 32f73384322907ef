/**
 * Image choice with caching: a fresh look-up wins; when the look-up fails or
 * finds nothing, the last good id is kept; only then the config's fallback.
 */
import type { ImageSpec } from '../../common/types';

export interface CachedImage {
  imageId: string;
  resolvedAt: number;
}

export interface ImageLookup {
  imageId?: string;
  error?: string;
  /** Why the configured fallback cannot be used (checked only when the look-up found nothing). */
  fallbackRejected?: string;
}

export interface ImageChoice {
  imageIds: Record<string, string>;
  cache: Record<string, CachedImage>;
  /** Images with no usable id at all, with why. */
  problems: string[];
  /** Images that used the last good id or the fallback, with why. */
  degraded: string[];
}

export function staleImages(specs: Record<string, ImageSpec>, cache: Record<string, CachedImage>, now: number, refreshMs: number): string[] {
  return Object.keys(specs).filter((name) => !cache[name] || now - cache[name].resolvedAt >= refreshMs);
}

export function chooseImages(
  specs: Record<string, ImageSpec>,
  cache: Record<string, CachedImage>,
  lookups: Record<string, ImageLookup>,
  now: number,
): ImageChoice {
  const next: Record<string, CachedImage> = { ...cache };
  const imageIds: Record<string, string> = {};
  const problems: string[] = [];
  const degraded: string[] = [];
  for (const [name, spec] of Object.entries(specs)) {
    const lookup = lookups[name];
    if (lookup?.imageId) {
      next[name] = { imageId: lookup.imageId, resolvedAt: now };
      imageIds[name] = lookup.imageId;
      continue;
    }
    const why = lookup?.error ?? (lookup ? 'no image matches the filters' : undefined);
    if (cache[name]) {
      imageIds[name] = cache[name].imageId;
      if (why) degraded.push(`images.${name}: ${why}; keeping the last good ${cache[name].imageId}`);
      continue;
    }
    const fallback = spec.fallback?.[0];
    if (fallback && lookup?.fallbackRejected) {
      problems.push(`images.${name}: ${why ?? 'not resolved'}, and the fallback ${fallback} cannot be used: ${lookup.fallbackRejected}`);
    } else if (fallback) {
      imageIds[name] = fallback;
      degraded.push(`images.${name}: ${why ?? 'not resolved'}; using the fallback ${fallback}`);
    } else {
      problems.push(`images.${name}: ${why ?? 'not resolved'} and no fallback is configured`);
    }
  }
  return { imageIds, cache: next, problems, degraded };
}
