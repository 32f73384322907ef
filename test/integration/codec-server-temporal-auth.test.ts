/**
 * `nstance codec-server --auth temporal` against a real Temporal frontend that checks credentials:
 * the dev server behind an authorizing gRPC layer (test/support/grpc-auth-proxy.ts) that grants
 * authorization headers per namespace. The real CLI process decodes for a header Temporal accepts
 * for the request's namespace, and refuses every other: a header granted elsewhere, no header, a
 * namespace the header may not read, and a namespace Temporal does not have.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { NstancePayloadCodec } from '../../adapters/temporal/payload-codec';
import { payloadKeyRingFromEnv } from '../../adapters/temporal/payload-keys';
import { GrpcAuthProxy } from '../support/grpc-auth-proxy';
import { freePort, REPO_ROOT, requireBuiltCli } from '../support/processes';
import { stackEnv } from '../support/stack-env';

const READER = 'Bearer reader-of-default';
const ELSEWHERE = 'Bearer reader-of-other';
const DESCRIBE = '/temporal.api.workflowservice.v1.WorkflowService/DescribeNamespace';

let proxy: GrpcAuthProxy;
let codecServer: ChildProcess | undefined;
let url = '';
let output = '';
const codec = new NstancePayloadCodec(payloadKeyRingFromEnv()!);

beforeAll(async () => {
  proxy = new GrpcAuthProxy(stackEnv().temporalAddress, { [READER]: ['default'], [ELSEWHERE]: ['other', 'missing-namespace'] });
  await proxy.start();
  const port = await freePort();
  const child = spawn(process.execPath, [requireBuiltCli(), 'codec-server', '--auth', 'temporal', '--host', '127.0.0.1', '--port', String(port)], {
    cwd: REPO_ROOT,
    env: { ...process.env, TEMPORAL_ADDRESS: proxy.address, TEMPORAL_NAMESPACE: 'default', NODE_NO_WARNINGS: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  codecServer = child;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the codec server did not start in 30 s:\n${output}`)), 30_000);
    const read = (chunk: Buffer) => {
      output += chunk.toString();
      if (/nstance codec-server on http/.test(output)) (clearTimeout(timer), resolve());
    };
    child.stdout.on('data', read);
    child.stderr.on('data', read);
    child.once('exit', (code) => (clearTimeout(timer), reject(new Error(`the codec server exited (${code}):\n${output}`))));
  });
  url = `http://127.0.0.1:${port}`;
}, 60_000);

afterAll(async () => {
  codecServer?.kill('SIGTERM');
  await proxy?.close();
});

async function decode(headers: Record<string, string>): Promise<{ status: number; value?: unknown }> {
  const [encrypted] = await codec.encode([defaultPayloadConverter.toPayload({ nonce: 'read-by-a-namespace-reader' })]);
  const body = JSON.stringify({ payloads: [temporal.api.common.v1.Payload.toObject(temporal.api.common.v1.Payload.create(encrypted), { bytes: String })] });
  const response = await fetch(`${url}/decode`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  if (response.status !== 200) return { status: response.status };
  const [plain] = ((await response.json()) as { payloads: Record<string, unknown>[] }).payloads.map((p) => temporal.api.common.v1.Payload.fromObject(p) as Payload);
  return { status: 200, value: defaultPayloadConverter.fromPayload(plain as Payload) };
}

test('a header Temporal accepts for the namespace decodes (asked once, then cached); every other is refused', async () => {
  expect(await decode({ authorization: READER, 'x-namespace': 'default' })).toEqual({ status: 200, value: { nonce: 'read-by-a-namespace-reader' } });
  expect(await decode({ authorization: READER, 'x-namespace': 'default' })).toEqual({ status: 200, value: { nonce: 'read-by-a-namespace-reader' } });
  // Granted another namespace only; no header at all; a namespace this header may not read.
  expect(await decode({ authorization: ELSEWHERE, 'x-namespace': 'default' })).toEqual({ status: 401 });
  expect(await decode({ 'x-namespace': 'default' })).toEqual({ status: 401 });
  expect(await decode({ authorization: READER, 'x-namespace': 'other' })).toEqual({ status: 401 });
  // Allowed through by the authorizer, but Temporal has no such namespace: the dev server's own answer refuses it.
  expect(await decode({ authorization: ELSEWHERE, 'x-namespace': 'missing-namespace' })).toEqual({ status: 401 });

  // What Temporal was asked: the user's own header, for the request's namespace; the second decode was answered
  // from the cache; the request without a header never reached Temporal.
  const asked = proxy.calls.filter((c) => c.path === DESCRIBE).map((c) => `${c.authorization} ${c.namespace} ${c.allowed ? 'allowed' : 'denied'}`);
  expect(asked).toEqual([`${READER} default allowed`, `${ELSEWHERE} default denied`, `${READER} other denied`, `${ELSEWHERE} missing-namespace allowed`]);
  // The codec server's own calls carry no credential of its own: only the users' headers were ever judged.
  expect(proxy.calls.filter((c) => c.path !== DESCRIBE)).toEqual([]);
});
