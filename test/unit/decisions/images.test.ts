import type { ImageSpec } from '../../../common/types';
import { chooseImages, staleImages } from '../../../workflows/decisions/images';

const spec = (fallback?: string): ImageSpec => ({ filters: [], owners: [], sort: 'creation-date', order: 'desc', fallback: fallback ? [fallback] : [] });

test('a fresh look-up wins and is cached', () => {
  const c = chooseImages({ al: spec('ami-fb') }, {}, { al: { imageId: 'ami-new' } }, 100);
  expect(c.imageIds).toEqual({ al: 'ami-new' });
  expect(c.cache).toEqual({ al: { imageId: 'ami-new', resolvedAt: 100 } });
  expect(c.problems).toEqual([]);
});

test('a failed look-up keeps the last good id before the fallback', () => {
  const c = chooseImages({ al: spec('ami-fb') }, { al: { imageId: 'ami-old', resolvedAt: 1 } }, { al: { error: 'Throttling' } }, 100);
  expect(c.imageIds).toEqual({ al: 'ami-old' });
  expect(c.cache.al.resolvedAt).toBe(1);
  expect(c.degraded[0]).toMatch(/Throttling; keeping the last good ami-old/);
});

test('nothing cached: the configured fallback; nothing at all: a problem naming the image', () => {
  expect(chooseImages({ al: spec('ami-fb') }, {}, { al: {} }, 1).imageIds).toEqual({ al: 'ami-fb' });
  const none = chooseImages({ al: spec() }, {}, { al: {} }, 1);
  expect(none.imageIds).toEqual({});
  expect(none.problems).toEqual(['images.al: no image matches the filters and no fallback is configured']);
});

test('staleImages: missing or older than the refresh interval', () => {
  const cache = { a: { imageId: 'x', resolvedAt: 0 }, b: { imageId: 'y', resolvedAt: 90 } };
  expect(staleImages({ a: spec(), b: spec(), c: spec() }, cache, 100, 50)).toEqual(['a', 'c']);
});

test('a fallback EC2 says cannot launch the template is not used: the group reports why instead', () => {
  const rejected = chooseImages({ al: spec('ami-x86') }, {}, { al: { error: 'throttled', fallbackRejected: 'ami-x86 is x86_64 but the template is arm64 (arm64)' } }, 1);
  expect(rejected.imageIds).toEqual({});
  expect(rejected.problems).toEqual(['images.al: throttled, and the fallback ami-x86 cannot be used: ami-x86 is x86_64 but the template is arm64 (arm64)']);
  // A last good id still wins over the fallback, checked or not.
  const cached = chooseImages({ al: spec('ami-x86') }, { al: { imageId: 'ami-good', resolvedAt: 0 } }, { al: { error: 'throttled', fallbackRejected: 'x' } }, 1);
  expect(cached.imageIds).toEqual({ al: 'ami-good' });
});
