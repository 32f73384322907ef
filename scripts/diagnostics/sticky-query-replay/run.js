// Runs N looping workflows on one worker with a short sticky schedule-to-start timeout while
// 16 clients signal and query them, then replays every history in a fresh worker and counts
// the replays that fail. See README.md. Env: ADDR, STICKY, N, SECS, CACHE, NOQUERY=1, SKIP=1.
const fs = require('node:fs');
const { Worker, NativeConnection, bundleWorkflowCode } = require('@temporalio/worker');
const { Connection, Client } = require('@temporalio/client');

const address = process.env.ADDR || '127.0.0.1:7299';
const sticky = process.env.STICKY || '100ms';
const workflows = Number(process.env.N || 20);
const seconds = Number(process.env.SECS || 90);
const queryShare = process.env.NOQUERY === '1' ? 0 : 0.3;

async function main() {
  const workflowBundle = await bundleWorkflowCode({ workflowsPath: require.resolve('./workflows.js') });
  const taskQueue = `sticky-query-replay-${Date.now()}`;
  const worker = await Worker.create({
    connection: await NativeConnection.connect({ address }),
    taskQueue,
    workflowBundle,
    activities: { work: async (n) => n },
    stickyQueueScheduleToStartTimeout: sticky,
    maxConcurrentWorkflowTaskExecutions: 2,
    maxCachedWorkflows: Number(process.env.CACHE || 10),
  });
  const running = worker.run();
  const client = new Client({ connection: await Connection.connect({ address }) });
  const ids = [];
  for (let i = 0; i < workflows; i++) {
    ids.push(`${taskQueue}-${i}`);
    await client.workflow.start('loopWorkflow', { taskQueue, workflowId: ids[i], args: [process.env.SKIP === '1'] });
  }
  const until = Date.now() + seconds * 1000;
  const counts = { signals: 0, queries: 0 };
  const traffic = async () => {
    while (Date.now() < until) {
      const handle = client.workflow.getHandle(ids[Math.floor(Math.random() * ids.length)]);
      const r = Math.random();
      try {
        if (r < queryShare) {
          await handle.query('status');
          counts.queries++;
        } else {
          await handle.signal(r < queryShare + 0.5 ? 'poke' : 'wake');
          counts.signals++;
        }
      } catch {
        // A query that timed out under load is part of the experiment, not a failure of it.
      }
    }
  };
  await Promise.all(Array.from({ length: 16 }, traffic));
  worker.shutdown();
  await running;

  const histories = [];
  let taskTimeouts = 0;
  for (const workflowId of ids) {
    const history = await client.workflow.getHandle(workflowId).fetchHistory();
    taskTimeouts += history.events.filter((e) => e.workflowTaskTimedOutEventAttributes).length;
    histories.push({ workflowId, history });
  }
  let failed = 0;
  for await (const result of Worker.runReplayHistories({ workflowBundle }, histories)) {
    if (!result.error) continue;
    if (++failed === 1) {
      const file = `/tmp/${result.workflowId}.history.json`;
      fs.writeFileSync(file, JSON.stringify(histories.find((h) => h.workflowId === result.workflowId).history));
      console.log(`${result.workflowId}: ${result.error.message.slice(0, 600)} (history in ${file})`);
    }
  }
  console.log(JSON.stringify({ sticky, workflows, ...counts, workflowTaskTimeouts: taskTimeouts, replaysFailed: failed }));
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
