/**
 * One shard run by a real `nstance worker` process (leadership on, metrics on), with default/web
 * serving 2, for the files that watch it from outside: the metrics scrape (metrics-scrape.test.ts),
 * a real agent on the worker's agent API (metrics-agents.test.ts) and the Web UI in a real browser
 * (web-ui.test.ts). Each file gets a shard of its own; `useObservedShard` registers the hooks that
 * start and stop it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import { groupStatus } from '../../client/ops/status';
import { TAG } from '../../common/names';
import type { AuditEntry, GroupRef } from '../../common/types';
import { eventually, tagOf } from './emulator';
import { AGENT_USERDATA, configText, testConfig } from './fixtures';
import { STACK_UI_VAR } from './global-setup';
import { LeaderStack, type LeaderWorker } from './leader-stack';
import { scrapeMetrics } from './metrics-scrape';
import { freePort } from './processes';
import { Registrar } from './registrar';
import { testSecretsKey } from './secret-ledger';

export interface ObservedShard {
  readonly shard: string;
  readonly ref: GroupRef;
  /** The test dev server's Web UI (http://127.0.0.1:<port>). */
  readonly ui: string;
  readonly stack: LeaderStack;
  readonly w1: LeaderWorker;
  readonly epoch: number;
  /** What `config apply --ui-url` printed (its Web UI links). */
  readonly applyOutput: string;
  scrape(): Promise<string>;
  /** Every instance EC2 has ever held for default/web (terminated ones too), by state. */
  groupInstancesInEc2(): Promise<{ all: number; running: number; terminated: number; runningIds: string[] }>;
  /** The shard's audit entries of one action. */
  audits(action: string): Promise<AuditEntry[]>;
  /** Stand-in agents: every member is told "registered" (those in `registrar.silent` excepted). */
  readonly registrar: Registrar;
}

// The collector every 2 s, with a 10 s grace, keeping records of ended instances 1 s: its actions are seen here.
// In the first config too: the worker caches it, and the collector's first pass may read that one.
const shardSettings = { garbage_collection: { interval: '2s', registration_timeout: '10s', deleted_record_retention: '1s' } };

export function useObservedShard(name: string): ObservedShard {
  const shard = `${name}-${Date.now().toString(36)}`;
  const ref = { shard, tenant: 'default', group: 'web' };
  // Object-storage secrets (the cluster PKI among them) under a key from the environment, which the worker inherits.
  const keyVar = `NSTANCE_TEST_OBS_KEY_${shard.replace(/\W/g, '_').toUpperCase()}`;
  const secrets = { provider: 'object-storage', encryption_key: { provider: 'env', source: keyVar } };
  let state: { stack: LeaderStack; w1: LeaderWorker; epoch: number; metricsUrl: string; applyOutput: string; registrar: Registrar } | undefined;
  const get = () => {
    if (!state) throw new Error(`the observed shard ${shard} is not started (beforeAll failed?)`);
    return state;
  };

  beforeAll(async () => {
    // Recorded for the history scan, which opens every object-storage secret with the keys tests used.
    testSecretsKey(keyVar);
    const stack = await LeaderStack.create({ shard, heartbeatTimeout: '3s', shardSettings, secrets });
    const metricsPort = await freePort();
    const sdkPort = await freePort();
    const w1 = await stack.startWorker('w1', { env: { NSTANCE_METRICS_PORT: String(metricsPort), NSTANCE_METRICS_HOST: '127.0.0.1', NSTANCE_SDK_METRICS_ADDRESS: `127.0.0.1:${sdkPort}` } });
    const { epoch } = await stack.waitForLeader(w1, 90_000);
    const file = path.join(stack.logDir, 'config.jsonc');
    const config = testConfig(stack.seed, { shard, bucket: stack.h.bucket, size: 2, shardSettings, secrets }) as { templates: { web: { userdata: { content: string } } } };
    config.templates.web.userdata.content = AGENT_USERDATA;
    fs.writeFileSync(file, configText(config));
    const applyOutput = await stack.cli(['config', 'apply', '-f', file, '--ui-url', process.env[STACK_UI_VAR] ?? '']);
    const registrar = new Registrar(stack.h.client, ref).start();
    state = { stack, w1, epoch, metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`, applyOutput, registrar };
    await eventually('default/web to serve 2', async () => {
      const s = await groupStatus(stack.h.client, ref, { limit: 0 }).catch(() => undefined);
      return s && s.inService === 2 && s.pending === 0 && s.draining === 0 ? s : undefined;
    }, 120_000);
  });

  afterAll(async () => {
    await state?.registrar.stop();
    if (process.env.NSTANCE_LEADER_TEST_LOGS) console.log(state?.w1.log());
    await state?.stack.close();
    delete process.env[keyVar];
  });

  return {
    shard,
    ref,
    ui: process.env[STACK_UI_VAR] ?? '',
    get stack() {
      return get().stack;
    },
    get w1() {
      return get().w1;
    },
    get epoch() {
      return get().epoch;
    },
    get applyOutput() {
      return get().applyOutput;
    },
    get registrar() {
      return get().registrar;
    },
    scrape: () => scrapeMetrics(get().metricsUrl),
    async groupInstancesInEc2() {
      const { stack } = get();
      const out = await stack.h.aws.ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: `tag:${TAG.shard}`, Values: [shard] }, { Name: `tag:${TAG.group}`, Values: ['default/web'] }] }));
      const instances = (out.Reservations ?? []).flatMap((r) => r.Instances ?? []).filter((i) => tagOf(i, TAG.managed) === 'true');
      const inState = (...names: string[]) => instances.filter((i) => names.includes(i.State?.Name ?? ''));
      const running = inState('running');
      return { all: instances.length, running: running.length, terminated: inState('terminated', 'shutting-down').length, runningIds: running.map((i) => i.InstanceId as string) };
    },
    audits: (action) => get().stack.audits(action),
  };
}
