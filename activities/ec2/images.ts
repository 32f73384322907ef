import { DescribeImagesCommand, type EC2Client, type Image } from '@aws-sdk/client-ec2';
import { ApplicationFailure } from '@temporalio/common';
import type { ImageSpec } from '../../common/types';
import { withAwsErrors } from '../aws/errors';
import type { TokenBucket } from '../aws/token-bucket';

export interface ResolvedImage {
  name: string;
  imageId: string;
  architecture?: string;
  source: 'lookup' | 'fallback';
}

export interface ImageDeps {
  ec2: EC2Client;
  describeLimit: TokenBucket;
}

/** Newest (or oldest) image matching the config's filters and owners; the config's fallback when none does. */
export async function resolveImage(deps: ImageDeps, name: string, spec: ImageSpec): Promise<ResolvedImage> {
  await deps.describeLimit.take();
  const found = await withAwsErrors(`DescribeImages for image "${name}"`, () =>
    deps.ec2.send(
      new DescribeImagesCommand({
        Owners: spec.owners.length > 0 ? spec.owners : undefined,
        Filters: [...spec.filters.map((f) => ({ Name: f.name, Values: f.values })), { Name: 'state', Values: ['available'] }],
      }),
    ),
  );
  const best = pickImage(found.Images ?? [], spec);
  if (best?.ImageId) return { name, imageId: best.ImageId, architecture: best.Architecture, source: 'lookup' };
  const fallback = spec.fallback?.[0];
  if (fallback) return { name, imageId: fallback, source: 'fallback' };
  throw ApplicationFailure.create({
    type: 'ConfigInvalid',
    nonRetryable: true,
    message: `images.${name}: no image matches the filters ${JSON.stringify(spec.filters)} (owners ${JSON.stringify(spec.owners)}) and no fallback is configured`,
  });
}

export function pickImage(images: Image[], spec: Pick<ImageSpec, 'sort' | 'order'>): Image | undefined {
  const key = (i: Image) => (spec.sort === 'name' ? (i.Name ?? '') : (i.CreationDate ?? ''));
  // Ties (same creation date) are broken by id so that every worker picks the same image.
  const sorted = [...images].sort((a, b) => key(a).localeCompare(key(b)) || (a.ImageId ?? '').localeCompare(b.ImageId ?? ''));
  return spec.order === 'desc' ? sorted[sorted.length - 1] : sorted[0];
}
