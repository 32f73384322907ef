/**
 * The worker's start-up read of its shard config for shard.infra.assume_role fails closed: an unreadable
 * or invalid config stops the worker (naming the object and the field) instead of letting it run on its
 * own credentials. A loopback HTTP server plays S3.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { shardCredentials, ShardConfigUnreadableError } from '../../workers/shard-credentials';

const minimalConfig = JSON.stringify({
  cluster: { id: 'c1', storage: { provider: 's3', bucket: 'nstance-b1' }, secrets: { provider: 'aws-secrets-manager' } },
  shard: { id: 's1', infra: { provider: 'aws', region: 'us-east-1', zone: 'us-east-1a' }, subnet_pools: { private: ['subnet-0aaa'] } },
});

/** Answers GET /nstance-b1/shard/s1/config.jsonc with each of `answers` in turn (the last one repeats). */
async function fakeS3(answers: { status: number; body: string }[]): Promise<{ endpoint: string; requests: () => number; close: () => Promise<void> }> {
  let n = 0;
  const server = http.createServer((req, res) => {
    const answer = answers[Math.min(n++, answers.length - 1)];
    res.writeHead(answer.status, { 'content-type': answer.status === 200 ? 'application/octet-stream' : 'application/xml', etag: '"e1"' });
    res.end(answer.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: () => n,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

const unavailable = { status: 503, body: '<Error><Code>ServiceUnavailable</Code><Message>down</Message></Error>' };
const denied = { status: 403, body: '<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>' };

describe('shardCredentials at worker start', () => {
  const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
  beforeAll(() => Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' }));
  afterAll(() => {
    process.env.AWS_ACCESS_KEY_ID = saved.id;
    process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
    if (saved.id === undefined) delete process.env.AWS_ACCESS_KEY_ID;
    if (saved.secret === undefined) delete process.env.AWS_SECRET_ACCESS_KEY;
  });

  it('refuses to start on its own credentials when the config stays unreadable, naming the object and the field', async () => {
    const s3 = await fakeS3([denied]);
    const log: string[] = [];
    try {
      const started = Date.now();
      const result = shardCredentials({ region: 'us-east-1', endpoint: s3.endpoint }, 'nstance-b1', 's1', (l) => log.push(l), { readWaitMs: 600, retryEveryMs: 100 });
      await expect(result).rejects.toThrow(ShardConfigUnreadableError);
      await expect(result).rejects.toThrow(/cannot read the shard config s3:\/\/nstance-b1\/shard\/s1\/config\.jsonc at start .*AccessDenied.*It may set shard\.infra\.assume_role, so the worker will not fall back to its own credentials/);
      // It waited and retried before giving up.
      expect(s3.requests()).toBeGreaterThanOrEqual(3);
      expect(Date.now() - started).toBeGreaterThanOrEqual(400);
      expect(log.join('\n')).toMatch(/not readable yet .*retrying/);
    } finally {
      await s3.close();
    }
  });

  it('waits out a config that is unreadable for a moment, then starts as the config says', async () => {
    const s3 = await fakeS3([unavailable, unavailable, { status: 200, body: minimalConfig }]);
    try {
      await expect(shardCredentials({ region: 'us-east-1', endpoint: s3.endpoint }, 'nstance-b1', 's1', () => undefined, { readWaitMs: 5_000, retryEveryMs: 50 })).resolves.toBeUndefined();
      expect(s3.requests()).toBe(3);
    } finally {
      await s3.close();
    }
  });

  it('refuses at once an invalid config, naming the object, the field and the problem', async () => {
    const broken = JSON.stringify({ ...JSON.parse(minimalConfig), shard: { ...JSON.parse(minimalConfig).shard, infra: { provider: 'aws', region: 'us-east-1', zone: 'us-east-1a', assume_role: { external_id: 'x' } } } });
    const s3 = await fakeS3([{ status: 200, body: broken }]);
    try {
      const result = shardCredentials({ region: 'us-east-1', endpoint: s3.endpoint }, 'nstance-b1', 's1', () => undefined, { readWaitMs: 5_000, retryEveryMs: 50 });
      await expect(result).rejects.toThrow(/the shard config s3:\/\/nstance-b1\/shard\/s1\/config\.jsonc is invalid, so whether shard\.infra\.assume_role is set is unknown.*role_arn/s);
      expect(s3.requests()).toBe(1);
    } finally {
      await s3.close();
    }
  });

  it('starts on its own credentials when the shard has no config yet (nothing sets assume_role)', async () => {
    const s3 = await fakeS3([{ status: 404, body: '<Error><Code>NoSuchKey</Code><Message>none</Message></Error>' }]);
    const log: string[] = [];
    try {
      await expect(shardCredentials({ region: 'us-east-1', endpoint: s3.endpoint }, 'nstance-b1', 's1', (l) => log.push(l))).resolves.toBeUndefined();
      expect(log.join('\n')).toMatch(/no shard config at s3:\/\/nstance-b1\/shard\/s1\/config\.jsonc yet/);
    } finally {
      await s3.close();
    }
  });
});
