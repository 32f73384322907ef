/**
 * The wire rebuild of AWS calls (test/support/wire-calls.ts), which the IAM proof of worker processes rests on:
 * requests the real SDK clients serialize (caught by a loopback server) come back as the SDK inputs they were
 * made from, as far as IAM cares: the same authorisation requests as the in-process fault layer derives.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CreateTagsCommand, EC2Client, RunInstancesCommand, TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import { DeregisterTargetsCommand, ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { DeleteObjectsCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { authRequestsOf, type ResourceFacts } from '../support/iam-calls';
import { wireCallOf, type WireCall } from '../support/wire-calls';

const scope = { region: 'us-east-1', account: '123456789012' };
const facts: ResourceFacts = { tagsOf: (id) => ({ 'nstance:cluster-id': 'c1', id }), attachment: () => undefined };

let server: http.Server;
let endpoint: string;
const seen: WireCall[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push(wireCallOf(req.method ?? 'GET', req.url ?? '/', req.headers, Buffer.concat(chunks), 'ok'));
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('caught');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const common = () => ({ region: 'us-east-1', endpoint, maxAttempts: 1, credentials: { accessKeyId: 'AKIDWIRE', secretAccessKey: 's' } });

/** Sends one command and returns what the wire made of it (the answer is a 500, ignored). */
async function overTheWire(client: { send(c: never): Promise<unknown>; destroy(): void }, command: { input: object }): Promise<WireCall> {
  const before = seen.length;
  await client.send(command as never).catch(() => undefined);
  client.destroy();
  expect(seen.length).toBe(before + 1);
  return seen[before] as WireCall;
}

const runInput = {
  ImageId: 'ami-1',
  MinCount: 1,
  MaxCount: 1,
  SubnetId: 'subnet-1',
  SecurityGroupIds: ['sg-1', 'sg-2'],
  KeyName: 'ops',
  IamInstanceProfile: { Arn: 'arn:aws:iam::123456789012:instance-profile/web' },
  TagSpecifications: [
    { ResourceType: 'instance' as const, Tags: [{ Key: 'nstance:cluster-id', Value: 'c1' }, { Key: 'nstance:instance-id', Value: 'web-1' }] },
    { ResourceType: 'volume' as const, Tags: [{ Key: 'nstance:cluster-id', Value: 'c1' }] },
  ],
};

test.each([
  ['RunInstances', () => new EC2Client(common()), new RunInstancesCommand(runInput)],
  ['TerminateInstances', () => new EC2Client(common()), new TerminateInstancesCommand({ InstanceIds: ['i-1', 'i-2'] })],
  ['CreateTags', () => new EC2Client(common()), new CreateTagsCommand({ Resources: ['eni-1'], Tags: [{ Key: 'nstance:leader-epoch', Value: '3' }] })],
  ['DeregisterTargets', () => new ElasticLoadBalancingV2Client(common()), new DeregisterTargetsCommand({ TargetGroupArn: 'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/1', Targets: [{ Id: 'i-1', Port: 80 }] })],
  ['GetObject', () => new S3Client({ ...common(), forcePathStyle: true }), new GetObjectCommand({ Bucket: 'b1', Key: 'shard/s1/a b+c.json' })],
  ['PutObject', () => new S3Client({ ...common(), forcePathStyle: true }), new PutObjectCommand({ Bucket: 'b1', Key: 'shard/s1/leader.json', Body: '{}' })],
  ['ListObjectsV2', () => new S3Client({ ...common(), forcePathStyle: true }), new ListObjectsV2Command({ Bucket: 'b1', Prefix: 'shard/s1/instance/' })],
  ['DeleteObjects', () => new S3Client({ ...common(), forcePathStyle: true }), new DeleteObjectsCommand({ Bucket: 'b1', Delete: { Objects: [{ Key: 'shard/s1/x&y' }, { Key: 'shard/s1/z' }] } })],
  ['GetSecretValue', () => new SecretsManagerClient(common()), new GetSecretValueCommand({ SecretId: 'nstance/c1/ca-key' })],
  ['GetParameter', () => new SSMClient(common()), new GetParameterCommand({ Name: '/nstance/c1/ca-key', WithDecryption: true })],
])('%s: the wire gives the same IAM requests as the SDK input', async (command, client, sdkCommand) => {
  const wire = await overTheWire(client() as never, sdkCommand);
  expect(wire.command).toBe(command);
  expect(wire.accessKeyId).toBe('AKIDWIRE');
  expect(wire.maxAttempts).toBe(1);
  const fromSdk = authRequestsOf(command, { ...sdkCommand.input }, scope, facts);
  expect(fromSdk?.length).toBeGreaterThan(0);
  expect(authRequestsOf(wire.command, wire.input, scope, facts)).toEqual(fromSdk);
});
