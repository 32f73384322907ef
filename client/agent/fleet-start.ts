/** Starts a simulated fleet for a shard, reading the cluster CA from S3 first (as instances get it at boot). */
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { s3Keys } from '../../common/names';
import { SimulatedFleet, type FleetOptions } from './fleet';

export interface StartFleetOptions extends Omit<FleetOptions, 'ec2' | 'caPem'> {
  aws: { ec2: EC2Client; s3: S3Client };
  bucket: string;
  /** How long to wait for the CA to exist (a worker creates it when the agent API or the first launch needs it). */
  caTimeoutMs?: number;
}

export async function readClusterCa(s3: S3Client, bucket: string): Promise<string | undefined> {
  try {
    const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: s3Keys.caCert() }));
    return await out.Body?.transformToString('utf8');
  } catch (err) {
    if ((err as { name?: string }).name === 'NoSuchKey') return undefined;
    throw err;
  }
}

export async function startFleet(options: StartFleetOptions): Promise<SimulatedFleet> {
  const deadline = Date.now() + (options.caTimeoutMs ?? 60_000);
  let caPem = await readClusterCa(options.aws.s3, options.bucket);
  while (!caPem) {
    if (Date.now() > deadline) throw new Error(`no cluster CA at s3://${options.bucket}/${s3Keys.caCert()}: is a worker with the agent API running?`);
    await new Promise((r) => setTimeout(r, 500));
    caPem = await readClusterCa(options.aws.s3, options.bucket);
  }
  const { aws, bucket: _bucket, caTimeoutMs: _t, ...rest } = options;
  return new SimulatedFleet({ ...rest, ec2: aws.ec2, caPem }).start();
}
