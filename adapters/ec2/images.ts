import { DescribeImagesCommand, type EC2Client, type Image } from '@aws-sdk/client-ec2';
import type { ImageSpec } from '../../common/types';
import { isAwsErrorCode, withAwsErrors } from '../aws/errors';
import type { RateLimiter } from '../aws/token-bucket';

export interface ResolvedImage {
  name: string;
  imageId: string;
  architecture?: string;
}

export interface ImageDeps {
  ec2: EC2Client;
  describeLimit: RateLimiter;
}

/** Newest (or oldest) image matching the config's filters and owners, or nothing when none matches. */
export async function lookupImage(deps: ImageDeps, name: string, spec: ImageSpec): Promise<ResolvedImage | undefined> {
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
  return best?.ImageId ? { name, imageId: best.ImageId, architecture: best.Architecture } : undefined;
}

export function pickImage(images: Image[], spec: Pick<ImageSpec, 'sort' | 'order'>): Image | undefined {
  const key = (i: Image) => (spec.sort === 'name' ? (i.Name ?? '') : (i.CreationDate ?? ''));
  // Ties (same creation date) are broken by id so that every worker picks the same image.
  const sorted = [...images].sort((a, b) => key(a).localeCompare(key(b)) || (a.ImageId ?? '').localeCompare(b.ImageId ?? ''));
  return spec.order === 'desc' ? sorted[sorted.length - 1] : sorted[0];
}

/**
 * What EC2 says of one image id: its architecture, `known: false` when EC2 does not know
 * it, or undefined when EC2 could not be asked (throttled, unreachable): callers decide
 * nothing from that.
 */
export async function describeImageId(deps: ImageDeps, imageId: string): Promise<{ known: boolean; architecture?: string } | undefined> {
  try {
    await deps.describeLimit.take();
    const out = await deps.ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }));
    const image = out.Images?.[0];
    return image ? { known: true, architecture: image.Architecture } : { known: false };
  } catch (err) {
    if (isAwsErrorCode(err, 'InvalidAMIID.NotFound') || isAwsErrorCode(err, 'InvalidAMIID.Malformed')) return { known: false };
    return undefined;
  }
}
