/**
 * The payload codec's cost per payload (`npm run bench -- codec`): encode and decode time and bytes
 * on the wire against plaintext, for the payload sizes a 2,000-instance group writes: a health
 * transition signal (~200 B), an instance's launch spec (~2 KB) and a group's carried state at the
 * test budget (~30 KB). No servers: the codec runs in the worker's and the client's process.
 * Knobs: BENCH_CODEC_ITERATIONS (default 2000 per size). Writes bench/results/codec.json.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { NstancePayloadCodec } from '../adapters/temporal/payload-codec';
import { payloadKeyRing } from '../adapters/temporal/payload-keys';
import { REPO_ROOT } from '../test/support/processes';
import { runBenchmark } from './run';

const ITERATIONS = Number(process.env.BENCH_CODEC_ITERATIONS || 2000);

function member(i: number): Record<string, unknown> {
  return { instanceId: `web-${String(i).padStart(12, '0')}`, ec2InstanceId: `i-0${(1e15 + i).toString(16)}`, phase: 'in-service', seq: i, since: new Date(1_700_000_000_000 + i).toISOString() };
}

const samples: Record<string, unknown> = {
  'health signal': { instanceId: 'web-abcdefghijkl', status: 'unhealthy', reason: 'missed 3 health reports', at: new Date().toISOString(), leaderEpoch: 7 },
  'launch spec': {
    kind: 'web',
    instanceType: 'm7g.large',
    subnetPool: 'private',
    userdata: `#!/bin/bash\n${'echo configure the instance {{ .Vars.Environment }}\n'.repeat(20)}`,
    args: { SecurityGroupIds: ['sg-0123456789abcdef0'], IamInstanceProfile: { Arn: 'arn:aws:iam::123456789012:instance-profile/web' }, ImageId: '{{ .Image.al2023arm }}' },
    vars: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`Var${i}`, `value-${i}-${'x'.repeat(20)}`])),
  },
  'group carried state': { members: Array.from({ length: 200 }, (_, i) => member(i)), desired: 2000, epoch: 3 },
};

async function main(): Promise<void> {
  const codec = new NstancePayloadCodec(payloadKeyRing({ current: randomBytes(32) }));
  const results = [];
  for (const [name, value] of Object.entries(samples)) {
    const payload: Payload = defaultPayloadConverter.toPayload(value);
    let encoded = (await codec.encode([payload]))[0] as Payload;
    const encodeStart = process.hrtime.bigint();
    for (let i = 0; i < ITERATIONS; i++) encoded = (await codec.encode([payload]))[0] as Payload;
    const encodeUs = Number(process.hrtime.bigint() - encodeStart) / 1000 / ITERATIONS;
    const decodeStart = process.hrtime.bigint();
    for (let i = 0; i < ITERATIONS; i++) await codec.decode([encoded]);
    const decodeUs = Number(process.hrtime.bigint() - decodeStart) / 1000 / ITERATIONS;
    const row = { payload: name, plainBytes: payload.data?.length ?? 0, wireBytes: encoded.data?.length ?? 0, encodeUs: round(encodeUs), decodeUs: round(decodeUs) };
    results.push(row);
    console.log(`${name}: ${row.plainBytes} B plain -> ${row.wireBytes} B on the wire; encode ${row.encodeUs} µs, decode ${row.decodeUs} µs`);
  }
  const dir = join(REPO_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'codec.json'), `${JSON.stringify({ at: new Date().toISOString(), node: process.version, iterations: ITERATIONS, loadAverage1m: round(loadavg()[0] ?? 0), cpus: cpus().length, results }, null, 2)}\n`);
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

runBenchmark(main);
