/**
 * The IAM proof's two tools, checked against each other.
 *
 * 1. moto's own IAM enforcement, in a moto of this file's own (it applies to the whole emulator): a user
 *    holding only the policy `nstance iam policy` generates runs the object-storage secret store and the
 *    cluster PKI (S3 only), and what moto does with each call is compared with the policy simulator's verdict
 *    on the same call. moto 5.2 evaluates an identity policy's Action, and its Resource only for S3 (bucket
 *    and key ARNs); every other service is checked against resource "*", and Condition blocks are not
 *    evaluated at all (no aws:RequestedRegion, aws:RequestTag, aws:ResourceTag, s3:prefix). The table below
 *    pins that down call by call, so a moto that starts checking more fails here and says so.
 * 2. The leader stack's ENI proof reads the worker instances' tags from EC2 (DescribeTags), so a worker
 *    launched without the cluster tag is refused there, as AWS would refuse the attach.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { DescribeImagesCommand, DescribeInstancesCommand, EC2Client, RunInstancesCommand, TerminateInstancesCommand, type _InstanceType } from '@aws-sdk/client-ec2';
import { AttachUserPolicyCommand, CreateAccessKeyCommand, CreatePolicyCommand, CreateUserCommand, IAMClient } from '@aws-sdk/client-iam';
import { CreateBucketCommand, DeleteObjectsCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createAwsClients, destroyAwsClients, type AwsClients } from '../../adapters/aws/clients';
import { ensureClusterPki } from '../../adapters/pki/cluster-ca';
import { ShardConfigStore } from '../../adapters/s3/config-store';
import { ObjectStore } from '../../adapters/s3/objects';
import { createSecretStore } from '../../adapters/secrets/factory';
import { parseConfigText } from '../../common/config';
import { workerPolicy } from '../../common/iam/policy';
import { TAG } from '../../common/names';
import { proveEniMoves } from '../support/eni-proof';
import { FaultLayer, MOTO_ACCOUNT } from '../support/faults';
import { configText, seedShard, testConfig } from '../support/fixtures';
import { createHarness, type Harness } from '../support/harness';
import { evaluate } from '../support/iam-proof';
import { stackEnv } from '../support/stack-env';
import { recordSecretsKey } from '../support/secret-ledger';

const run = Date.now().toString(36);
const REGION = 'us-east-1';
const shard = `enf-${run}`;
const bucket = `nstance-enf-${run}`;
const otherBucket = `nstance-enf-other-${run}`;
const KEY_VAR = `NSTANCE_TEST_ENF_KEY_${run.toUpperCase()}`;
const configObject = {
  cluster: { id: 'enf', storage: { provider: 's3', bucket }, secrets: { provider: 'object-storage', encryption_key: { provider: 'env', source: KEY_VAR } } },
  shard: { id: shard, infra: { provider: 'aws', region: REGION, zone: `${REGION}a` }, subnet_pools: { private: ['subnet-0aaa'] } },
};
const config = parseConfigText(configText(configObject), 'config.jsonc');
const admin = { accessKeyId: 'test', secretAccessKey: 'test' };

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A moto of this file's own (IAM enforcement is emulator-wide), stopped in afterAll by its process group. */
async function startMoto(): Promise<{ endpoint: string; process: ChildProcess }> {
  const bin = process.env.NSTANCE_MOTO_BIN;
  if (!bin || !fs.existsSync(bin)) throw new Error(`NSTANCE_MOTO_BIN (${bin ?? 'unset'}) is not the pinned moto: global setup sets it`);
  const port = await freePort();
  const log = fs.openSync(path.join(process.env.NSTANCE_TEST_STACK_LOGS ?? os.tmpdir(), `moto-iam-${run}.log`), 'a');
  const child = spawn(bin, ['-H', '127.0.0.1', '-p', String(port)], { detached: true, stdio: ['ignore', log, log] });
  fs.closeSync(log);
  const endpoint = `http://127.0.0.1:${port}`;
  for (const deadline = Date.now() + 60_000; ; ) {
    const up = await fetch(`${endpoint}/moto-api/`).then((r) => r.ok, () => false);
    if (up) return { endpoint, process: child };
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`moto did not start on ${endpoint} (exit ${child.exitCode})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe("moto's IAM enforcement, with a user holding only the generated policy", () => {
  let moto: { endpoint: string; process: ChildProcess };
  let worker: AwsClients;
  const faults = new FaultLayer({ region: REGION });
  const clientsOf = (credentials: { accessKeyId: string; secretAccessKey: string }, region = REGION) => createAwsClients({ region, endpoint: moto.endpoint, maxAttempts: 1, credentials: async () => credentials });
  let workerKey: { accessKeyId: string; secretAccessKey: string };
  let tagged: string;

  beforeAll(async () => {
    process.env[KEY_VAR] = recordSecretsKey(`iam-enforcement: the key in ${KEY_VAR}`, Buffer.alloc(32, 7)).toString('base64');
    moto = await startMoto();
    // Seeded while moto authorises everything (INITIAL_NO_AUTH_ACTION_COUNT unset), then switched on.
    const seed = clientsOf(admin);
    const s3 = seed.s3 as S3Client;
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    await s3.send(new CreateBucketCommand({ Bucket: otherBucket }));
    await s3.send(new PutObjectCommand({ Bucket: otherBucket, Key: 'cluster/secret/ca-key', Body: 'not yours' }));
    await new ShardConfigStore(new ObjectStore({ s3, bucket }), shard).writeConfig(configText(configObject), { absent: true });
    const image = (await seed.ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }))).Images?.[0]?.ImageId;
    const launched = await seed.ec2.send(
      new RunInstancesCommand({
        ImageId: image,
        MinCount: 1,
        MaxCount: 1,
        InstanceType: 't3.micro' as _InstanceType,
        TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: TAG.clusterId, Value: 'enf' }, { Key: TAG.shard, Value: shard }, { Key: TAG.managed, Value: 'true' }] }],
      }),
    );
    tagged = launched.Instances?.[0]?.InstanceId ?? '';
    const iam = new IAMClient({ region: REGION, endpoint: moto.endpoint, credentials: admin });
    await iam.send(new CreateUserCommand({ UserName: 'nstance-worker' }));
    const policy = await iam.send(new CreatePolicyCommand({ PolicyName: 'nstance-worker', PolicyDocument: JSON.stringify(workerPolicy(config, { account: MOTO_ACCOUNT })) }));
    await iam.send(new AttachUserPolicyCommand({ UserName: 'nstance-worker', PolicyArn: policy.Policy?.Arn }));
    const key = await iam.send(new CreateAccessKeyCommand({ UserName: 'nstance-worker' }));
    workerKey = { accessKeyId: key.AccessKey?.AccessKeyId ?? '', secretAccessKey: key.AccessKey?.SecretAccessKey ?? '' };
    iam.destroy();
    destroyAwsClients(seed);
    const enforced = await fetch(`${moto.endpoint}/moto-api/reset-auth`, { method: 'POST', body: '0' });
    expect(enforced.ok).toBe(true);
    worker = clientsOf(workerKey);
    faults.attachAll(worker);
  }, 120_000);

  afterAll(async () => {
    if (worker) destroyAwsClients(worker);
    delete process.env[KEY_VAR];
    if (moto?.process.pid) process.kill(-moto.process.pid, 'SIGKILL');
  });

  test('moto enforces: the key it was seeded with (no IAM user behind it) is now refused', async () => {
    const outsider = clientsOf(admin);
    await expect(outsider.s3.send(new GetObjectCommand({ Bucket: bucket, Key: `shard/${shard}/config.jsonc` }))).rejects.toThrow(/InvalidAccessKeyId|AccessDenied|not valid|does not exist/i);
    destroyAwsClients(outsider);
  });

  test('the object-storage secret store and the cluster PKI run on the generated policy alone, and the simulator allows the same calls', async () => {
    const objects = new ObjectStore({ s3: worker.s3, bucket });
    expect(await objects.read(`shard/${shard}/config.jsonc`)).toBeDefined();
    const where = { clusterId: 'enf', bucket, secrets: config.cluster.secrets };
    const store = await createSecretStore(worker, where);
    const pki = await ensureClusterPki({ secrets: store, objects }, where);
    expect(pki.created).toEqual({ caKey: true, registrationKey: true, caCert: true });
    expect(await store.get('ca-key')).toContain('PRIVATE KEY');
    expect(await store.list('')).toEqual(['ca-key', 'registration-key']);
    await objects.write(`shard/${shard}/audit/enf.json`, '{}', { absent: true });
    const verdicts = await evaluate(faults.calls.flatMap((c) => c.auth ?? []), [workerPolicy(config, { account: MOTO_ACCOUNT })]);
    expect(faults.calls.filter((c) => c.outcome !== 'ok' && c.error !== 'NoSuchKey' && c.error !== 'NotFound').map((c) => `${c.command}: ${c.error}`)).toEqual([]);
    expect(verdicts.filter((v) => v.result !== 'Allowed')).toEqual([]);
  });

  /** [what, the call as the worker makes it, the simulator's verdict, moto's] (titled by the first, third and fourth). */
  type Row = [string, () => Promise<unknown>, 'Allowed' | 'Denied', 'Allowed' | 'Denied'];
  /** The worker's key in another region, logged with that region for the simulator. */
  const farFaults = new FaultLayer({ region: 'eu-west-1' });
  const other = () => {
    const far = clientsOf(workerKey, 'eu-west-1');
    farFaults.attachAll(far);
    return far;
  };
  const rows: Row[] = [
    ['read an object outside the policy (cluster/ beyond the CA and the store)', () => worker.s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'cluster/backup/ca-key' })), 'Denied', 'Denied'],
    ["read another bucket's secrets", () => worker.s3.send(new GetObjectCommand({ Bucket: otherBucket, Key: 'cluster/secret/ca-key' })), 'Denied', 'Denied'],
    ["write another shard's config", () => worker.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'shard/other/config.jsonc', Body: '{}' })), 'Denied', 'Denied'],
    // Conditions: moto evaluates none of them in identity policies.
    ["list another shard's prefix (s3:prefix condition)", () => worker.s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'shard/other/' })), 'Denied', 'Allowed'],
    ['describe instances in another region (aws:RequestedRegion condition)', async () => {
      const far = other();
      try {
        return await far.ec2.send(new DescribeInstancesCommand({}));
      } finally {
        destroyAwsClients(far);
      }
    }, 'Denied', 'Allowed'],
    // Resources outside S3: moto checks every other service against "*", which no scoped statement names.
    ["terminate the shard's own tagged instance (EC2 resource ARN, aws:ResourceTag)", async () => {
      // Described first (moto allows Describe*: its statement names "*"), so the fault layer knows the instance's tags.
      await worker.ec2.send(new DescribeInstancesCommand({ InstanceIds: [tagged] }));
      return worker.ec2.send(new TerminateInstancesCommand({ InstanceIds: [tagged] }));
    }, 'Allowed', 'Denied'],
    // moto checks s3:DeleteObject on the bucket's ARN, which the policy does not name, then refuses every key (in Errors).
    ['delete an expired instance record (DeleteObjects)', async () => {
      const out = await worker.s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: [{ Key: `shard/${shard}/instance/default.web-x.json` }] } }));
      const refused = (out.Errors ?? []).filter((e) => e.Code === 'AccessDenied');
      if (refused.length > 0) throw Object.assign(new Error(`AccessDenied for ${refused.map((e) => e.Key).join(', ')}`), { name: 'AccessDenied' });
      return out;
    }, 'Allowed', 'Denied'],
  ];

  test.each(rows.map(([what, call, simulator, motoSays]) => ({ what, call, simulator, motoSays })))('$what: simulator $simulator, moto $motoSays', async ({ call, simulator, motoSays }) => {
    const before = [faults.calls.length, farFaults.calls.length];
    const outcome = await call().then(
      () => 'Allowed',
      (err: Error) => (/AccessDenied|not authorized|UnauthorizedOperation/i.test(`${err.name} ${err.message}`) ? 'Denied' : `error ${err.name}: ${err.message}`),
    );
    expect(outcome).toBe(motoSays);
    // The simulator on the same call, as the fault layer recorded it.
    const requests = [...faults.calls.slice(before[0]), ...farFaults.calls.slice(before[1])].flatMap((c) => c.auth ?? []);
    expect(requests.length).toBeGreaterThan(0);
    const verdicts = await evaluate(requests, [workerPolicy(config, { account: MOTO_ACCOUNT })]);
    expect(verdicts.every((v) => v.result === 'Allowed') ? 'Allowed' : 'Denied').toBe(simulator);
  });
});

describe('the leader ENI proof reads the worker instances\' tags from EC2', () => {
  let h: Harness;
  let ec2: EC2Client;
  beforeAll(async () => {
    h = await createHarness({ shard: `enitags-${run}`, bucket: `nstance-enitags-${run}` });
    ec2 = h.aws.ec2;
  });
  afterAll(async () => h?.close());

  test('an attach to a worker tagged with the cluster is allowed; to one without the tag, refused', async () => {
    const seed = await seedShard(h);
    const cfg = parseConfigText(configText(testConfig(seed, { shard: h.shard, bucket: h.bucket, size: 0 })), 'config.jsonc');
    const launch = async (tags: { Key: string; Value: string }[]) =>
      (await ec2.send(new RunInstancesCommand({ ImageId: seed.imageId, MinCount: 1, MaxCount: 1, SubnetId: seed.subnetIds[0], InstanceType: 't3.micro', TagSpecifications: [{ ResourceType: 'instance', Tags: tags }] }))).Instances?.[0]?.InstanceId ?? '';
    const taggedWorker = await launch([{ Key: TAG.clusterId, Value: cfg.cluster.id }, { Key: 'Name', Value: 'worker-a' }]);
    const untaggedWorker = await launch([{ Key: 'Name', Value: 'worker-b' }]);
    const attach = (instanceId: string) => ({ action: 'AttachNetworkInterface', interfaceId: seed.leaderInterfaceId, instanceId, outcome: 'forwarded' as const, at: Date.now() });
    const detach = (instanceId: string) => ({ ...attach(instanceId), action: 'DetachNetworkInterface' });
    await expect(proveEniMoves(ec2, [attach(taggedWorker), detach(taggedWorker)], cfg, stackEnv().region)).resolves.toBeGreaterThanOrEqual(3);
    await expect(proveEniMoves(ec2, [attach(taggedWorker), attach(untaggedWorker)], cfg, stackEnv().region)).rejects.toThrow(
      new RegExp(`ec2:AttachNetworkInterface on arn:aws:ec2:[^ ]+:instance/${untaggedWorker}.*ImplicitlyDenied`),
    );
  });
});
