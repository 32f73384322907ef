import { DescribeInstancesCommand, type EC2Client, type Instance } from '@aws-sdk/client-ec2';
import { ListObjectsV2Command, GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { TAG } from '../../common/names';
import { causeMessages } from '../../common/failures';

/** States of an instance that still exists: a stopped one left behind is a leak too. */
export const ALIVE_STATES = ['pending', 'running', 'stopping', 'stopped'];

/** Instances the emulator holds for a shard, read back from EC2 (not from what our code believes). */
export async function shardInstances(ec2: EC2Client, shard: string, states = ['pending', 'running']): Promise<Instance[]> {
  const out = await ec2.send(
    new DescribeInstancesCommand({
      Filters: [
        { Name: `tag:${TAG.shard}`, Values: [shard] },
        { Name: `tag:${TAG.managed}`, Values: ['true'] },
        { Name: 'instance-state-name', Values: states },
      ],
    }),
  );
  return (out.Reservations ?? []).flatMap((r) => r.Instances ?? []);
}

export function tagOf(instance: Instance, key: string): string | undefined {
  return instance.Tags?.find((t) => t.Key === key)?.Value;
}

export async function listKeys(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const out = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    keys.push(...(out.Contents ?? []).map((c) => c.Key ?? ''));
    token = out.NextContinuationToken;
  } while (token);
  return keys;
}

export async function readJson<T>(s3: S3Client, bucket: string, key: string): Promise<T> {
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return JSON.parse(await out.Body!.transformToString('utf8')) as T;
}

/** Polls until `check` returns a value (not undefined) or the timeout passes. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000, everyMs = 500): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  let failed = 0;
  let tries = 0;
  for (;;) {
    tries++;
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
      failed++;
    }
    if (Date.now() > deadline) {
      const errors = lastError ? ` (${failed} of ${tries} checks threw; the last: ${causeMessages(lastError).join(': ')})` : '';
      throw new Error(`timed out waiting for ${what}${errors}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
