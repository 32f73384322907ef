/**
 * The HTTP fault proxy's EC2 rules: the account's token buckets (RequestLimitExceeded
 * when empty), RunInstances ClientToken idempotency, and its census of calls. The
 * proxy runs in front of a tiny fake EC2 (no moto needed), driven by the real AWS SDK.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DescribeInstancesCommand, EC2Client, RunInstancesCommand, TerminateInstancesCommand, type RunInstancesCommandInput } from '@aws-sdk/client-ec2';
import { classifyRequest, errorCodeOf, s3KeyKind } from '../support/aws-requests';
import { censusDiff } from '../support/call-census';
import { Bucket, ClientTokens, Ec2RequestLimits, ec2BucketOf, ec2CostOf, runParameters } from '../support/ec2-limits';
import { Ec2FaultProxy } from '../support/fault-proxy';

function fakeClock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

const form = (fields: Record<string, string | number>) => new URLSearchParams(Object.entries(fields).map(([k, v]): [string, string] => [k, String(v)]));

describe('Bucket', () => {
  it('gives its burst, then refills at its rate, never above capacity', () => {
    const clock = fakeClock();
    const b = new Bucket({ capacity: 10, refillPerSecond: 2 }, clock.now);
    expect(b.tryTake(10)).toBe(true);
    expect(b.tryTake(1)).toBe(false);
    clock.advance(500);
    expect(b.tryTake(1)).toBe(true);
    expect(b.tryTake(1)).toBe(false);
    clock.advance(60_000);
    expect(b.available()).toBe(10);
  });

  it('never admits a call that costs more than the whole bucket', () => {
    const b = new Bucket({ capacity: 5, refillPerSecond: 100 }, fakeClock().now);
    expect(b.tryTake(6)).toBe(false);
    expect(b.available()).toBe(5);
  });
});

describe('Ec2RequestLimits (EC2 defaults)', () => {
  it('sorts actions into EC2 buckets and costs RunInstances and TerminateInstances per instance', () => {
    expect(['RunInstances', 'TerminateInstances', 'DescribeInstances', 'GetConsoleOutput', 'CreateTags', 'AttachNetworkInterface'].map(ec2BucketOf)).toEqual([
      'runInstances',
      'terminate',
      'describe',
      'describe',
      'mutate',
      'mutate',
    ]);
    expect(ec2CostOf('RunInstances', form({ MinCount: 1, MaxCount: 25 }))).toBe(25);
    expect(ec2CostOf('TerminateInstances', form({ 'InstanceId.1': 'i-1', 'InstanceId.2': 'i-2', 'InstanceId.3': 'i-3' }))).toBe(3);
    expect(ec2CostOf('DescribeInstances', form({ MaxResults: 1000 }))).toBe(1);
  });

  it('RunInstances: 1,000 instances of burst, then 2 per second', () => {
    const clock = fakeClock();
    const limits = new Ec2RequestLimits({}, clock.now);
    const run = (n: number) => limits.admit('RunInstances', form({ MinCount: 1, MaxCount: n })).admitted;
    expect(run(600)).toBe(true);
    expect(run(400)).toBe(true);
    expect(run(1)).toBe(false);
    clock.advance(1_000);
    expect(run(1)).toBe(true);
    expect(run(1)).toBe(true);
    expect(run(1)).toBe(false);
  });

  it('Describe*: 100 requests of burst, then 20 per second; other buckets are separate', () => {
    const clock = fakeClock();
    const limits = new Ec2RequestLimits({}, clock.now);
    const describe = () => limits.admit('DescribeInstances', form({})).admitted;
    expect(Array.from({ length: 100 }, describe).every(Boolean)).toBe(true);
    expect(describe()).toBe(false);
    expect(limits.admit('TerminateInstances', form({ 'InstanceId.1': 'i-1' })).admitted).toBe(true);
    expect(limits.admit('CreateTags', form({})).admitted).toBe(true);
    clock.advance(1_000);
    expect(Array.from({ length: 21 }, describe).filter(Boolean)).toHaveLength(20);
  });

  it('TerminateInstances: 1,000 instances, 20 per second; mutating calls: 200, 10 per second', () => {
    const clock = fakeClock();
    const limits = new Ec2RequestLimits({}, clock.now);
    const ids = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`InstanceId.${i + 1}`, `i-${i}`]));
    expect(limits.admit('TerminateInstances', form(ids)).admitted).toBe(true);
    expect(limits.admit('TerminateInstances', form({ 'InstanceId.1': 'i-x' })).admitted).toBe(false);
    clock.advance(1_000);
    expect(limits.admit('TerminateInstances', form(Object.fromEntries(Object.entries(ids).slice(0, 20)))).admitted).toBe(true);
    expect(Array.from({ length: 201 }, () => limits.admit('ModifyInstanceAttribute', form({})).admitted).filter(Boolean)).toHaveLength(200);
    limits.refillAll();
    expect(limits.available('mutate')).toBe(200);
  });
});

describe('ClientTokens', () => {
  const ok = (id: string) => ({ status: 200, id });

  it('same token and parameters: the first answer, launched once; other parameters: a mismatch', async () => {
    const tokens = new ClientTokens<{ status: number; id: string }>((a) => a.status === 200);
    let launches = 0;
    const launch = async () => ok(`i-${++launches}`);
    expect(await tokens.run('t1', 'p', launch)).toEqual({ outcome: 'launched', answer: ok('i-1') });
    expect(await tokens.run('t1', 'p', launch)).toEqual({ outcome: 'replayed', answer: ok('i-1') });
    expect(await tokens.run('t1', 'other', launch)).toEqual({ outcome: 'mismatch' });
    expect(launches).toBe(1);
  });

  it('a refused launch binds nothing: the token may be used again, even with other parameters', async () => {
    const tokens = new ClientTokens<{ status: number; id: string }>((a) => a.status === 200);
    expect((await tokens.run('t', 'p', async () => ({ status: 503, id: '' }))).outcome).toBe('launched');
    expect(await tokens.run('t', 'q', async () => ok('i-9'))).toEqual({ outcome: 'launched', answer: ok('i-9') });
  });

  it('requests racing with one token launch once and all get that launch', async () => {
    const tokens = new ClientTokens<{ status: number; id: string }>((a) => a.status === 200);
    let launches = 0;
    const slow = () => new Promise<{ status: number; id: string }>((resolve) => setTimeout(() => resolve(ok(`i-${++launches}`)), 20));
    const answers = await Promise.all([1, 2, 3].map(() => tokens.run('t', 'p', slow)));
    expect(launches).toBe(1);
    expect(answers.map((a) => a.outcome).sort()).toEqual(['launched', 'replayed', 'replayed']);
  });

  it('parameters are compared without the token and whatever their order', () => {
    expect(runParameters(form({ ClientToken: 'a', ImageId: 'ami-1', MaxCount: 1 }))).toBe(runParameters(form({ MaxCount: 1, ImageId: 'ami-1', ClientToken: 'b' })));
    expect(runParameters(form({ ImageId: 'ami-1' }))).not.toBe(runParameters(form({ ImageId: 'ami-2' })));
  });
});

describe('request classification', () => {
  it('names the service and action of Query, JSON and S3 requests', () => {
    expect(classifyRequest('POST', '/', {}, form({ Action: 'RunInstances', Version: '2016-11-15' }))).toEqual({ service: 'ec2', action: 'RunInstances' });
    expect(classifyRequest('POST', '/', {}, form({ Action: 'DescribeTargetHealth', Version: '2015-12-01' }))).toEqual({ service: 'elasticloadbalancing', action: 'DescribeTargetHealth' });
    expect(classifyRequest('POST', '/', { 'x-amz-target': 'secretsmanager.ListSecrets' })).toEqual({ service: 'secretsmanager', action: 'ListSecrets' });
    expect(classifyRequest('GET', '/b/shard/s1/config.jsonc', {})).toEqual({ service: 's3', action: 'GetObject', resource: 'shard/s1/config.jsonc' });
    expect(classifyRequest('GET', '/b?list-type=2&prefix=x', {})).toEqual({ service: 's3', action: 'ListObjectsV2' });
    expect(classifyRequest('PUT', '/b/shard/s1/audit/2026-01-01/x.json', {})).toMatchObject({ action: 'PutObject' });
    expect(classifyRequest('PUT', '/b', {})).toEqual({ service: 's3', action: 'CreateBucket' });
  });

  it('groups S3 keys by kind', () => {
    expect(s3KeyKind('shard/s1/config.jsonc')).toBe('config.jsonc');
    expect(s3KeyKind('shard/s1/audit/2026-01-01/a.json')).toBe('audit/');
    expect(s3KeyKind('cluster/ca.crt')).toBe('cluster/ca.crt');
    expect(s3KeyKind('cluster/secret/x/y')).toBe('cluster/secret/');
  });

  it('reads error codes from XML and JSON answers', () => {
    expect(errorCodeOf(Buffer.from('<Response><Errors><Error><Code>InvalidAMIID.NotFound</Code></Error></Errors></Response>'))).toBe('InvalidAMIID.NotFound');
    expect(errorCodeOf(Buffer.from('{"__type":"com.amazonaws#ResourceNotFoundException","message":"x"}'))).toBe('ResourceNotFoundException');
    expect(errorCodeOf(Buffer.from('fine'))).toBeUndefined();
  });
});

/** A fake EC2 answering RunInstances (a new instance each time), DescribeInstances and TerminateInstances. */
async function fakeEc2(): Promise<{ url: string; seen: string[]; close: () => Promise<void> }> {
  const seen: string[] = [];
  let next = 0;
  const ns = 'xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"';
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      const action = form.get('Action') ?? `${req.method} ${req.url}`;
      const terminated = [...form.entries()].filter(([k]) => k.startsWith('InstanceId.')).map(([, id]) => `<item><instanceId>${id}</instanceId></item>`).join('');
      seen.push(action);
      const body =
        action === 'RunInstances'
          ? `<RunInstancesResponse ${ns}><requestId>r</requestId><reservationId>r-1</reservationId><ownerId>1</ownerId><instancesSet><item><instanceId>i-${String(++next).padStart(8, '0')}</instanceId><instanceState><code>0</code><name>pending</name></instanceState></item></instancesSet></RunInstancesResponse>`
          : action === 'DescribeInstances'
            ? `<DescribeInstancesResponse ${ns}><requestId>r</requestId><reservationSet/></DescribeInstancesResponse>`
            : action === 'TerminateInstances'
              ? `<TerminateInstancesResponse ${ns}><requestId>r</requestId><instancesSet>${terminated}</instancesSet></TerminateInstancesResponse>`
              : '';
      res.writeHead(200, { 'content-type': 'text/xml' });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('Ec2FaultProxy with EC2 limits and ClientTokens', () => {
  let upstream: Awaited<ReturnType<typeof fakeEc2>>;
  let proxy: Ec2FaultProxy;
  let ec2: EC2Client;
  let clock: ReturnType<typeof fakeClock>;

  beforeEach(async () => {
    upstream = await fakeEc2();
    clock = fakeClock();
    proxy = new Ec2FaultProxy({ target: upstream.url, ec2Limits: true, clientTokens: true, now: clock.now });
    await proxy.start();
    // One attempt: what the proxy answers is what the caller sees (the SDK would retry a throttle).
    ec2 = new EC2Client({ region: 'us-east-1', endpoint: proxy.url, maxAttempts: 1, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  });

  afterEach(async () => {
    ec2.destroy();
    await proxy.close();
    await upstream.close();
  });

  const launch = (token: string, extra: Partial<RunInstancesCommandInput> = {}) =>
    ec2.send(new RunInstancesCommand({ ImageId: 'ami-1', InstanceType: 't3.micro', MinCount: 1, MaxCount: 1, ClientToken: token, ...extra }));
  const errorOf = (p: Promise<unknown>) => p.then(() => undefined, (err: Error & { $metadata?: { httpStatusCode?: number } }) => ({ name: err.name, status: err.$metadata?.httpStatusCode }));

  it('answers the 101st Describe of a burst RequestLimitExceeded (503) without asking EC2, and counts it', async () => {
    const before = proxy.census.snapshot();
    for (let i = 0; i < 100; i++) await ec2.send(new DescribeInstancesCommand({}));
    expect(await errorOf(ec2.send(new DescribeInstancesCommand({})))).toEqual({ name: 'RequestLimitExceeded', status: 503 });
    expect(upstream.seen.filter((a) => a === 'DescribeInstances')).toHaveLength(100);
    clock.advance(1_000);
    for (let i = 0; i < 20; i++) await ec2.send(new DescribeInstancesCommand({}));
    expect(await errorOf(ec2.send(new DescribeInstancesCommand({})))).toMatchObject({ name: 'RequestLimitExceeded' });
    const diff = censusDiff(proxy.census.snapshot(), before);
    expect(diff.actions['ec2:DescribeInstances']).toEqual({ calls: 122, instances: 0, outcomes: { ok: 120, throttled: 2 } });
    expect(proxy.census.throttled()).toEqual({ 'ec2:DescribeInstances': 2 });
  });

  it('counts RunInstances per instance: a 1,000-instance launch empties the bucket', async () => {
    await ec2.send(new RunInstancesCommand({ ImageId: 'ami-1', MinCount: 1, MaxCount: 1000 }));
    expect(await errorOf(launch('after-burst'))).toEqual({ name: 'RequestLimitExceeded', status: 503 });
    // The throttled launch bound nothing: once the bucket refills, the same token launches.
    clock.advance(500);
    const out = await launch('after-burst');
    expect(out.Instances?.[0]?.InstanceId).toBe('i-00000002');
    expect(proxy.census.snapshot().actions['ec2:RunInstances']).toEqual({ calls: 3, instances: 1002, outcomes: { ok: 2, throttled: 1 } });
  });

  it('replays a launch for its ClientToken, and refuses the token with other parameters', async () => {
    const first = await launch('tok-1');
    const again = await launch('tok-1');
    expect(again.Instances?.[0]?.InstanceId).toBe(first.Instances?.[0]?.InstanceId);
    expect(await errorOf(launch('tok-1', { InstanceType: 'm7g.large' }))).toEqual({ name: 'IdempotentParameterMismatch', status: 400 });
    const other = await launch('tok-2');
    expect(other.Instances?.[0]?.InstanceId).not.toBe(first.Instances?.[0]?.InstanceId);
    expect(upstream.seen.filter((a) => a === 'RunInstances')).toHaveLength(2);
    expect(proxy.census.snapshot().actions['ec2:RunInstances']?.outcomes).toEqual({ ok: 2, replayed: 1, mismatch: 1 });
  });

  it('keeps a ledger of the instances EC2 launched and terminated (a replayed launch is not a new instance)', async () => {
    await launch('tok-a');
    await launch('tok-a');
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: ['i-00000001'] }));
    expect(await errorOf(ec2.send(new TerminateInstancesCommand({ InstanceIds: Array.from({ length: 1000 }, (_, i) => `i-x${i}`) })))).toMatchObject({ name: 'RequestLimitExceeded' });
    expect(proxy.instanceEvents.map((e) => [e.kind, e.ids])).toEqual([
      ['launched', ['i-00000001']],
      ['terminated', ['i-00000001']],
    ]);
  });

  it('launches once for concurrent requests with one token', async () => {
    const outs = await Promise.all([1, 2, 3, 4].map(() => launch('tok-race')));
    expect(new Set(outs.map((o) => o.Instances?.[0]?.InstanceId)).size).toBe(1);
    expect(upstream.seen.filter((a) => a === 'RunInstances')).toHaveLength(1);
  });

  it('throttles TerminateInstances by the instances it names', async () => {
    const ids = Array.from({ length: 1000 }, (_, i) => `i-${String(i).padStart(8, '0')}`);
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: ids }));
    expect(await errorOf(ec2.send(new TerminateInstancesCommand({ InstanceIds: ['i-x'] })))).toMatchObject({ name: 'RequestLimitExceeded' });
    expect(proxy.census.snapshot().actions['ec2:TerminateInstances']).toEqual({ calls: 2, instances: 1001, outcomes: { ok: 1, throttled: 1 } });
  });

  it('counts calls of other services by action, and S3 by kind of key', async () => {
    await fetch(`${proxy.url}/bucket/shard/s1/config.jsonc`);
    await fetch(`${proxy.url}/bucket/shard/s1/config.jsonc`);
    const snap = proxy.census.snapshot();
    expect(snap.actions['s3:GetObject']).toEqual({ calls: 2, instances: 0, outcomes: { ok: 2 } });
    expect(snap.s3).toEqual({ 'GetObject config.jsonc': 2 });
  });
});

describe('Ec2FaultProxy without the options', () => {
  it('forwards every call as before: no throttling, no token replay', async () => {
    const upstream = await fakeEc2();
    const proxy = new Ec2FaultProxy({ target: upstream.url });
    await proxy.start();
    const ec2 = new EC2Client({ region: 'us-east-1', endpoint: proxy.url, maxAttempts: 1, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
    try {
      for (let i = 0; i < 120; i++) await ec2.send(new DescribeInstancesCommand({}));
      const a = await ec2.send(new RunInstancesCommand({ ImageId: 'ami-1', MinCount: 1, MaxCount: 1, ClientToken: 't' }));
      const b = await ec2.send(new RunInstancesCommand({ ImageId: 'ami-1', MinCount: 1, MaxCount: 1, ClientToken: 't' }));
      expect(a.Instances?.[0]?.InstanceId).not.toBe(b.Instances?.[0]?.InstanceId);
      expect(proxy.census.snapshot().actions['ec2:DescribeInstances']?.outcomes).toEqual({ ok: 120 });
    } finally {
      ec2.destroy();
      await proxy.close();
      await upstream.close();
    }
  });
});
