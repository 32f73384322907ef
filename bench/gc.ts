/**
 * Garbage-collection benchmark: one pass of the collector over a shard of 5,000 tagged instances,
 * most of them owned by running instance workflows, some orphans and duplicates.
 *
 *   npm run build && node dist/bench/gc.js        (`npm run bench -- gc`)
 *   BENCH_GC_INSTANCES=5000   tagged instances in the shard
 *   BENCH_GC_RESERVATION=200  instances per RunInstances call
 *   NSTANCE_TEST_MOTO_INDEXED_TAGS=0  run moto as shipped (see test/support/moto/sitecustomize.py: minutes per listing)
 *
 * It starts its own Temporal dev server and moto (the integration tests' global setup), launches the
 * instances in moto tagged as ours, starts a stand-in instance workflow (bench/gc/workflows.ts, on
 * this benchmark's worker) for each owned one with NstanceShard/NstanceGroup/NstanceInstanceId set
 * at start, and runs passes of collectGarbage from a workflow with gcWorkflow's activity options:
 * the first collects the orphans, the second is the steady state. It reports each pass's duration
 * and phases, the DescribeWorkflowExecution, ListWorkflowExecutions, DescribeInstances and
 * TerminateInstances calls it made, and what it collected, then checks EC2: every owned and young
 * instance still runs, every orphan is gone. Results: printed, and written to bench/results/gc.json.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import { CreateBucketCommand as CreateS3Bucket } from '@aws-sdk/client-s3';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker, type LogEntry } from '@temporalio/worker';
import { createAwsClients, destroyAwsClients } from '../adapters/aws/clients';
import { createGcActivities, GC_DESCRIBE_PAGE_SIZE, type GcCounts, type Orphan } from '../activities/gc-activities';
import { defaultEc2RateLimits } from '../adapters/aws/token-bucket';
import { TERMINATE_BATCH_SIZE } from '../adapters/ec2/terminate-batch';
import { startProgress } from '../activities/gc/progress';
import { taggedInstances } from '../activities/gc/tagged-instances';
import { OWNERS_PAGE_SIZE } from '../adapters/temporal/workflow-status';
import { runningInShard } from '../common/search-attributes';
import { findImage } from '../scripts/seed/ec2';
import { eventually } from '../test/support/emulator';
import { FaultLayer } from '../test/support/faults';
import { motoTagsIndexed } from '../test/support/moto-tags';
import globalSetup from '../test/support/global-setup';
import globalTeardown from '../test/support/global-teardown';
import { REPO_ROOT } from '../test/support/processes';
import { stackEnv } from '../test/support/stack-env';
import { TemporalCallLayer } from '../test/support/temporal-calls';
import { launchFleet, ORPHAN_ROLES, planFleet, roomySubnet, startOwners, type Launched } from './gc/fleet';
import { passReport, type PassReport } from './gc/report';
import { runBenchmark } from './run';
import { nstanceDataConverter } from '../adapters/temporal/data-converter';

const INTERVAL_MS = 120_000;
/** moto pages DescribeInstances by reservation: 5 reservations of 200 make EC2's largest page, 1,000 instances. */
const MOTO_PAGE_RESERVATIONS = 5;
/** The young must stay younger than the grace while a pass lists the shard. */
const MIN_YOUNG_GAP_MS = 90_000;
const CLUSTER_ID = 'bench';

/** The pass's counts from its log entry, without the SDK's activity fields. */
function countsOf(meta: Record<string, unknown> | undefined): GcCounts {
  const counts = startProgress().counts;
  for (const key of Object.keys(counts) as (keyof GcCounts)[]) counts[key] = Number(meta?.[key] ?? NaN);
  return counts;
}

const log = (message: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${message}`);

async function main(): Promise<void> {
  const total = Number(process.env.BENCH_GC_INSTANCES ?? 5000);
  const reservation = Number(process.env.BENCH_GC_RESERVATION ?? 200);
  const indexedTags = motoTagsIndexed(process.env);
  // The activity logs each pass's counts; everything else only when it is a warning or worse.
  const passLogs: GcCounts[] = [];
  Runtime.install({
    logger: new DefaultLogger('DEBUG', (entry: LogEntry) => {
      if (entry.message === 'garbage collection pass') passLogs.push(countsOf(entry.meta));
      else if (entry.level === 'WARN' || entry.level === 'ERROR') console.error(`${entry.level} ${entry.message}`, entry.meta ?? '');
    }),
  });
  await globalSetup();
  const env = stackEnv();
  const shard = `bench-gc-${Date.now().toString(36)}`;
  const bucket = `nstance-${shard}`;
  const taskQueue = `bench-gc.${shard}`;
  const aws = createAwsClients({ region: env.region, endpoint: env.awsEndpoint, maxAttempts: 3 });
  const ec2Calls = new FaultLayer().attach(aws.ec2);
  const connection = await Connection.connect({ address: env.temporalAddress });
  const client = new Client({ connection, dataConverter: nstanceDataConverter() });
  const temporal = new TemporalCallLayer(client);
  let worker: Worker | undefined;
  let running: Promise<void> | undefined;
  try {
    await aws.s3.send(new CreateS3Bucket({ Bucket: bucket }));
    const imageId = await findImage(aws.ec2);
    const subnetId = await roomySubnet(aws.ec2);
    worker = await Worker.create({
      connection: await NativeConnection.connect({ address: env.temporalAddress }),
      namespace: 'default',
      taskQueue,
      dataConverter: nstanceDataConverter(),
      workflowsPath: require.resolve('./gc/workflows'),
      activities: createGcActivities({ aws, bucket, temporal: temporal.client, gcDescribePageSize: MOTO_PAGE_RESERVATIONS }),
      maxCachedWorkflows: 1000,
    });
    running = worker.run();

    const plan = planFleet(total);
    let t = Date.now();
    const spec = { ec2: aws.ec2, imageId, subnetId, clusterId: CLUSTER_ID, shard, reservation };
    const old = await launchFleet(spec, plan.old, (n) => n % 1000 < reservation && log(`launched ${n}/${plan.old.length}`));
    const launchMs = Date.now() - t;
    t = Date.now();
    await startOwners(client, taskQueue, shard, old, (n) => log(`started ${n} owners`));
    const ownersMs = Date.now() - t;
    const running_ = old.filter((l) => l.role === 'owned' || l.role === 'unrecorded').length;
    t = Date.now();
    await eventually('visibility to list every owner', async () => ((await client.workflow.count(runningInShard('instanceWorkflow', shard))).count === running_ ? true : undefined), 300_000, 1_000);
    const visibilityMs = Date.now() - t;
    const oldest = Math.max(...old.map((l) => l.launchedAtMs));
    const wait = oldest + MIN_YOUNG_GAP_MS - Date.now();
    if (wait > 0) {
      log(`waiting ${Math.round(wait / 1000)} s, so the young instances stay inside the grace while a pass runs`);
      await new Promise((r) => setTimeout(r, wait));
    }
    const young = await launchFleet(spec, plan.young, () => undefined);
    const fleet: Launched[] = [...old, ...young];
    log(`shard ${shard}: ${fleet.length} tagged instances, ${running_} running owners (launch ${launchMs} ms, owners ${ownersMs} ms, visibility ${visibilityMs} ms)`);

    // The floor: the same paginated DescribeInstances of the shard alone, which no pass can beat.
    t = Date.now();
    await taggedInstances({ ec2: aws.ec2, limits: defaultEc2RateLimits(), clusterId: CLUSTER_ID, shard, pageSize: MOTO_PAGE_RESERVATIONS, onPage: () => undefined });
    const listingFloorMs = Date.now() - t;
    log(`listing the shard alone: ${listingFloorMs} ms`);

    const passes: PassReport[] = [];
    for (const name of ['first: orphans to collect', 'second: steady state']) {
      // Just older than the youngest old instance: every old one is past the grace, the young are not.
      const graceMs = Date.now() - oldest - 2_000;
      temporal.reset();
      const ec2From = ec2Calls.calls.length;
      const started = Date.now();
      const handle = await client.workflow.start('gcPassWorkflow', {
        workflowId: `bench-gc-pass-${shard}-${passes.length + 1}`,
        taskQueue,
        args: [{ shard, clusterId: CLUSTER_ID, graceMs, at: new Date().toISOString() }],
      });
      const collected = (await handle.result()) as Orphan[];
      const durationMs = Date.now() - started;
      const report = await passReport({ name, handle, durationMs, collected, fleet, temporal, ec2Calls: ec2Calls.calls.slice(ec2From), counts: passLogs.at(-1), intervalMs: INTERVAL_MS });
      passes.push(report);
      log(`pass ${name}: ${durationMs} ms, ${report.calls.DescribeWorkflowExecution} describes, ${report.calls.DescribeInstancesPages} EC2 pages, collected ${collected.length}`);
    }

    // What EC2 holds now, read back from it.
    const states = new Map<string, string>();
    let token: string | undefined;
    do {
      const out = await aws.ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'tag:nstance:shard', Values: [shard] }], MaxResults: 1000, NextToken: token }));
      for (const i of (out.Reservations ?? []).flatMap((r) => r.Instances ?? [])) states.set(i.InstanceId as string, i.State?.Name ?? '');
      token = out.NextToken || undefined;
    } while (token);
    const alive = (l: Launched) => ['pending', 'running'].includes(states.get(l.ec2InstanceId) ?? '');
    const orphans = fleet.filter((l) => ORPHAN_ROLES.includes(l.role));
    const kept = fleet.filter((l) => !ORPHAN_ROLES.includes(l.role));
    const verified = { keptRunning: kept.filter(alive).length, kept: kept.length, orphansGone: orphans.filter((l) => !alive(l)).length, orphans: orphans.length };
    const roles = Object.fromEntries([...new Set(fleet.map((l) => l.role))].map((role) => [role, fleet.filter((l) => l.role === role).length]));

    const summary = {
      measured: 'one garbage-collection pass (collectGarbage, from a workflow with gcWorkflow\'s activity options, on a benchmark worker) over a shard of tagged instances in moto, most owned by running instance workflows',
      at: new Date().toISOString(),
      config: {
        instances: fleet.length,
        instancesPerReservation: reservation,
        describePageSize: `${MOTO_PAGE_RESERVATIONS} reservations = ${MOTO_PAGE_RESERVATIONS * reservation} instances (moto pages by reservation; EC2's largest page is ${GC_DESCRIBE_PAGE_SIZE})`,
        visibilityPageSize: OWNERS_PAGE_SIZE,
        terminateBatchSize: TERMINATE_BATCH_SIZE,
        intervalMs: INTERVAL_MS,
        motoIndexedTags: indexedTags,
      },
      fleet: roles,
      setupMs: { launch: launchMs, startOwners: ownersMs, visibilityCaughtUp: visibilityMs },
      listingFloorMs,
      listingFloor: 'the same paginated DescribeInstances of the shard, alone, just before the first pass: what moto takes to answer it',
      passes,
      describesBefore: `the previous collector described one workflow per tagged instance past the grace: ${old.length} DescribeWorkflowExecution calls for this shard's pass`,
      verified,
      // The machine is shared: moto's answers, which most of a pass waits on, slow down with its load.
      machine: { cpus: os.cpus().length, node: process.version, platform: `${os.platform()} ${os.arch()}`, loadAverage1m: Number(os.loadavg()[0]?.toFixed(2)) },
    };
    const out = path.join(REPO_ROOT, 'bench', 'results', 'gc.json');
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, `${JSON.stringify(summary, null, 2)}\n`);
    console.log('');
    for (const p of passes) {
      console.log(`${p.name}: ${p.durationMs} ms (${p.fractionOfInterval} of the ${INTERVAL_MS / 1000} s interval); phases ${JSON.stringify(p.phasesMs)}`);
      console.log(`  calls ${JSON.stringify(p.calls)}; collected ${JSON.stringify(p.collected)}`);
    }
    console.log(`listing the shard alone (moto's floor for any pass): ${listingFloorMs} ms`);
    console.log(`verified in EC2: ${verified.keptRunning}/${verified.kept} owned or young still running, ${verified.orphansGone}/${verified.orphans} orphans gone`);
    console.log(`written to ${out}`);
    if (verified.keptRunning !== verified.kept || verified.orphansGone !== verified.orphans) throw new Error(`the collector got it wrong: ${JSON.stringify(verified)}`);
  } finally {
    worker?.shutdown();
    await running?.catch(() => undefined);
    await connection.close().catch(() => undefined);
    destroyAwsClients(aws);
    await globalTeardown();
  }
}

runBenchmark(main);
