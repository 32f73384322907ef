/**
 * Key-rotation benchmark: `nstance secrets rotate-key` over N object-storage secrets (default
 * 2,000, the fleet design point), through the real workflow and activities on a private Temporal
 * dev server and moto.
 *
 *   npm run build && node dist/bench/key-rotation.js        (`npm run bench -- key-rotation`)
 *   BENCH_SECRETS=2000      secrets under the old key
 *   BENCH_PAGE_SIZE=100     secrets per activity
 *   BENCH_PAGES_PER_RUN=50  pages per workflow run before continue-as-new
 *
 * Reports the rotation's duration, pages (activities), workflow runs and the largest history of a
 * run, and every S3 request by operation; then checks every secret opens with the new key only.
 * Results: printed, and written to bench/results/key-rotation.json.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CreateBucketCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { createActivities } from '../activities';
import { createAwsClients, destroyAwsClients } from '../adapters/aws/clients';
import { ShardConfigStore } from '../adapters/s3/config-store';
import { ObjectStore } from '../adapters/s3/objects';
import { decryptSecret, KeyRing } from '../adapters/secrets/crypto';
import { ObjectStorageSecretStore } from '../adapters/secrets/object-storage';
import { followKeyRotation, startKeyRotation } from '../client/ops/secrets';
import { shardTaskQueue } from '../common/names';
import { keyRotationWorkflowId, type KeyRotationProgress } from '../workflows/key-rotation-api';
import { FaultLayer } from '../test/support/faults';
import globalSetup from '../test/support/global-setup';
import globalTeardown from '../test/support/global-teardown';
import { REPO_ROOT } from '../test/support/processes';
import { stackEnv } from '../test/support/stack-env';
import { runBenchmark } from './run';

const log = (message: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${message}`);

async function main(): Promise<void> {
  const count = Number(process.env.BENCH_SECRETS ?? 2000);
  const pageSize = Number(process.env.BENCH_PAGE_SIZE ?? 100);
  const pagesPerRun = Number(process.env.BENCH_PAGES_PER_RUN ?? 50);
  Runtime.install({ logger: new DefaultLogger('WARN') });
  await globalSetup();
  const env = stackEnv();
  const shard = `bench-rot-${Date.now().toString(36)}`;
  const bucket = `nstance-${shard}`;
  const [oldKey, newKey] = [randomBytes(32), randomBytes(32)];
  process.env.BENCH_ROTATION_NEW_KEY = newKey.toString('base64');
  process.env.BENCH_ROTATION_OLD_KEY = oldKey.toString('base64');
  const aws = createAwsClients({ region: env.region, endpoint: env.awsEndpoint, maxAttempts: 3 });
  const connection = await Connection.connect({ address: env.temporalAddress });
  const client = new Client({ connection });
  let worker: Worker | undefined;
  let running: Promise<void> | undefined;
  try {
    await aws.s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const config = {
      cluster: {
        id: 'bench',
        storage: { provider: 's3', bucket },
        secrets: { provider: 'object-storage', encryption_key: { provider: 'env', source: 'BENCH_ROTATION_NEW_KEY' }, old_encryption_keys: [{ provider: 'env', source: 'BENCH_ROTATION_OLD_KEY' }] },
      },
      shard: { id: shard, infra: { provider: 'aws', region: env.region, zone: `${env.region}a` }, subnet_pools: { private: ['subnet-0aaa'] } },
    };
    await new ShardConfigStore(new ObjectStore({ s3: aws.s3, bucket }), shard).writeConfig(JSON.stringify(config), { absent: true });
    const before = new ObjectStorageSecretStore(aws.s3, bucket, 'secret/', new KeyRing(oldKey));
    const names = Array.from({ length: count }, (_, i) => `files/default/web/etc/app/s${String(i).padStart(5, '0')}`);
    let t = Date.now();
    for (let i = 0; i < names.length; i += 50) await Promise.all(names.slice(i, i + 50).map((name) => before.put(name, `value-${name}`)));
    log(`seeded ${count} secrets under the old key in ${Date.now() - t} ms`);

    // Counted from here: only the rotation's requests.
    const s3Calls = new FaultLayer().attach(aws.s3);
    worker = await Worker.create({
      connection: await NativeConnection.connect({ address: env.temporalAddress }),
      namespace: 'default',
      taskQueue: shardTaskQueue(shard),
      workflowsPath: require.resolve('../workflows'),
      activities: createActivities({ aws, bucket, temporal: client }),
    });
    running = worker.run();
    t = Date.now();
    await startKeyRotation(client, { shard, actor: 'bench', pageSize, pagesPerRun });
    let last: KeyRotationProgress | undefined;
    let shown = 0;
    const result = await followKeyRotation(client, shard, (p) => {
      last = p;
      if (Date.now() - shown > 5000) {
        shown = Date.now();
        log(`pass ${p.pass}: ${p.pass_totals.scanned}/${p.plan?.total ?? '?'}, ${p.totals.rewritten} re-encrypted, run ${p.runs}`);
      }
    });
    const rotationMs = Date.now() - t;
    const finalRun = await client.workflow.getHandle(keyRotationWorkflowId(shard)).describe();

    const byOperation: Record<string, number> = {};
    for (const op of ['ListObjectsV2', 'GetObject', 'PutObject', 'HeadObject']) byOperation[op] = s3Calls.callsOf(op).length;

    let underNew = 0;
    let underOld = 0;
    for (let i = 0; i < names.length; i += 50) {
      await Promise.all(
        names.slice(i, i + 50).map(async (name) => {
          const out = await aws.s3.send(new GetObjectCommand({ Bucket: bucket, Key: `cluster/secret/${name}` }));
          const blob = Buffer.from(await out.Body!.transformToByteArray());
          if (decryptSecret(blob, newKey)?.toString() === `value-${name}`) underNew++;
          if (decryptSecret(blob, oldKey)) underOld++;
        }),
      );
    }
    const report = {
      at: new Date().toISOString(),
      machine: { cpus: require('node:os').cpus().length, node: process.version },
      secrets: count,
      pageSize,
      pagesPerRun,
      rotationMs,
      perSecretMs: Number((rotationMs / count).toFixed(2)),
      status: result.status,
      passes: result.passes,
      totals: result.totals,
      pages: Math.ceil(count / pageSize) * result.passes,
      workflowRuns: last?.runs,
      finalRunHistoryLength: finalRun.historyLength,
      s3Requests: byOperation,
      check: { underNewKey: underNew, underOldKey: underOld },
    };
    console.log(JSON.stringify(report, null, 2));
    if (underNew !== count || underOld !== 0 || result.status !== 'done') throw new Error(`rotation left ${count - underNew} secrets not under the new key, ${underOld} under the old`);
    fs.writeFileSync(path.join(REPO_ROOT, 'bench', 'results', 'key-rotation.json'), `${JSON.stringify(report, null, 2)}\n`);
  } finally {
    worker?.shutdown();
    await running?.catch(() => undefined);
    await connection.close();
    destroyAwsClients(aws);
    await globalTeardown();
  }
}

runBenchmark(main);
