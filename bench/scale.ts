/**
 * Fleet-scale benchmark (issue 8, "Measured"): for each size N, 0 → N with the project
 * against a direct-SDK floor, on a private Temporal dev server and moto, with an HTTP
 * fault proxy enforcing EC2's token buckets and ClientToken rules in front of moto; then
 * an expiry replacement of a cohort with max_surge.
 *
 *   npm run bench -- scale                      (scripts/bench.sh: builds, runs dist/bench/scale.js)
 *   BENCH_SIZES=50 BENCH_HOLD=10s npm run bench -- scale
 *
 * Per size: a fresh worker process (`nstance worker`) and simulated fleet process, warmed
 * up with one instance; the floor; the project (`nstance group scale default/web N`),
 * held in steady state for BENCH_HOLD, then scaled to 0. Knobs: scripts/bench.sh.
 * Results: printed, and written to bench/results/scale.json (after every phase, so a run
 * that fails late keeps what it measured).
 */
import * as path from 'node:path';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { motoTagsIndexed } from '../test/support/moto-tags';
import globalSetup from '../test/support/global-setup';
import globalTeardown from '../test/support/global-teardown';
import { REPO_ROOT } from '../test/support/processes';
import { configSummary } from './scale/config';
import { runFloor, type LaunchTemplate } from './scale/floor';
import { scaleOptions } from './scale/options';
import { cohortExpiryMs, runReplacement } from './scale/replacement';
import { newReport, ratioOf, summary, writeReport } from './scale/report';
import { runScaleUp } from './scale/scale-up';
import { Session } from './scale/session';
import { inServiceOf, ScaleStack } from './scale/stack';
import { runBenchmark } from './run';

const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

async function main(): Promise<void> {
  const options = scaleOptions(process.env, path.join(REPO_ROOT, 'bench', 'results', 'scale.json'));
  // The replay check runs a replay worker here: its lifecycle lines are not results.
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const report = newReport(options);
  const save = () => writeReport(report, options.out);
  // Temporal's own default, not the tests' early suggestion: continue-as-new as often as in production.
  process.env.NSTANCE_STACK_SUGGEST_CONTINUE_AS_NEW_AT = String(options.suggestContinueAsNewAt);
  const indexedTags = motoTagsIndexed(process.env);
  report.motoIndexedTags = indexedTags;
  console.log(`scale benchmark: sizes ${options.sizes.join(', ')}; replacement ${options.replaceSize || 'off'}; floor concurrency ${options.floorConcurrency}; results ${options.out}`);
  await globalSetup();
  let stack: ScaleStack | undefined;
  let session: Session | undefined;
  // Ctrl-C or a kill: record what was measured, stop the worker and fleet processes and the servers.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      report.error ??= `interrupted by ${signal}`;
      save();
      console.log(`\n${summary(report)}\nwritten to ${options.out}`);
      void (session?.kill() ?? Promise.resolve())
        .then(() => stack?.close())
        .catch(() => undefined)
        .finally(() => void globalTeardown().finally(() => process.exit(130)));
    });
  }
  try {
    stack = await ScaleStack.create(options);
    console.log(`shard ${stack.shard}; logs in ${stack.logDir}${options.keepLogs ? '' : ' (removed at the end; BENCH_KEEP_LOGS=1 keeps them)'}`);
    report.config = configSummary(stack.configText());
    await stack.applyConfig();
    let template: LaunchTemplate | undefined;

    for (const size of options.sizes) {
      console.log(`\n== N=${size}`);
      session = await Session.start(stack, `n${size}`);
      try {
        template = await session.warmUp();
        const status = await stack.groupStatus();
        report.build.statusQuery = { inService: status.inService !== undefined, diagnostics: status.diagnostics !== undefined };
        report.launch = { instanceType: template.instanceType, userDataBytes: template.userDataBytes, tags: template.tags.length, subnets: template.subnetIds.length };
        console.log(`warmed up (launch: ${template.instanceType}, ${template.tags.length} tags, userdata ${template.userDataBytes} bytes)`);
        const floor = await runFloor(stack, template, size);
        console.log(`floor: all ${size} running after ${secs(floor.allRunningMs)} (launched in ${secs(floor.allLaunchedMs)}, throttles seen ${floor.throttlesSeenByCaller})`);
        const project = await runScaleUp(session, size);
        const ratio = ratioOf(project, floor);
        report.sizes.push({ size, floor, project, ratio });
        console.log(
          `project (from the scale command reaching the group, ${secs(project.signalledMs)} after it started): all ${size} running after ${secs(project.allRunningMs)} (${ratio.running}x the floor), in service after ${secs(project.allInServiceMs)} ` +
            `(${ratio.inService}x; ${secs(project.inServiceAfterRunningMs)} after running); throttles injected/surfaced ${project.throttles.injected}/${project.throttles.surfaced}; scaled to 0 in ${secs(project.scaleDown.ms)}`,
        );
        save();
      } finally {
        await session.stop();
      }
    }

    if (options.replaceSize > 0) {
      const size = options.replaceSize;
      const known = report.sizes.find((r) => r.size === size)?.project.allInServiceMs;
      console.log(`\n== replacement of ${size} (cohort expiry ${secs(cohortExpiryMs(size, known, options.replaceExpiryMs))}, max_surge ${options.maxSurge})`);
      session = await Session.start(stack, `replace${size}`);
      try {
        await session.warmUp();
        const replacement = await runReplacement(session, size, known);
        report.build.maxSurge = replacement.maxSurge !== null;
        report.replacement = replacement;
        console.log(`replacement: all ${size} replaced in ${secs(replacement.replaceAllMs)}; EC2 held at most ${replacement.maxHeld} (allowed ${replacement.allowedHeld})`);
        save();
      } finally {
        await session.stop();
      }
    } else {
      report.replacement = { skipped: 'BENCH_REPLACE_SIZE=off' };
    }
    report.complete = true;
  } catch (err) {
    const status = await stack?.groupStatus().catch(() => undefined);
    report.error = `${(err as Error).message}${status ? ` (group: desired ${status.desired}, running ${status.running}, in service ${inServiceOf(status)}, lastError ${status.lastError ?? '-'})` : ''}`;
    throw err;
  } finally {
    save();
    console.log(`\n${summary(report)}\nwritten to ${options.out}`);
    await stack?.close().catch(() => undefined);
    await globalTeardown();
  }
}

runBenchmark(main);
