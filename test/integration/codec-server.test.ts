/**
 * The codec server as Temporal's own tools use it: `temporal workflow show` reads a history through
 * it (--codec-endpoint, the protocol the Web UI speaks), and sees the payloads decoded, where the
 * same command without it sees ciphertext only.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { nstanceDataConverter } from '../../adapters/temporal/data-converter';
import { NstancePayloadCodec } from '../../adapters/temporal/payload-codec';
import { payloadKeyRingFromEnv } from '../../adapters/temporal/payload-keys';
import { startCodecServer, type CodecServer } from '../../workers/codec-server';
import { stackEnv } from '../support/stack-env';

const run = promisify(execFile);
const MARKER = `decoded-by-the-codec-server-${Date.now().toString(36)}`;
const TOKEN = 'codec-test-token';
/** The probe's input as `workflow show --output json` prints a decoded json/plain payload (data in base64). */
const DECODED = Buffer.from(JSON.stringify({ marker: MARKER })).toString('base64');

let connection: Connection;
let server: CodecServer;

beforeAll(async () => {
  connection = await Connection.connect({ address: stackEnv().temporalAddress });
  server = await startCodecServer({ codec: new NstancePayloadCodec(payloadKeyRingFromEnv()!), auth: { mode: 'token', tokens: [TOKEN] }, allowedOrigins: [], host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await server?.close();
  await connection?.close();
});

async function show(workflowId: string, codec: string[]): Promise<string> {
  const env = stackEnv();
  const { stdout } = await run(env.temporalBin, ['workflow', 'show', '--address', env.temporalAddress, '--workflow-id', workflowId, '--output', 'json', ...codec], { maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

test('temporal workflow show decodes through the codec server, with its token, and sees only ciphertext without it', async () => {
  const client = new Client({ connection, dataConverter: nstanceDataConverter() });
  const workflowId = `codec-server-probe-${Date.now().toString(36)}`;
  // Nobody polls this queue: the started event (its input) is all the history holds.
  const handle = await client.workflow.start('codecServerProbe', { taskQueue: 'codec-server-probe', workflowId, args: [{ marker: MARKER }] });
  try {
    const raw = await show(workflowId, []);
    expect(raw).not.toContain(DECODED);
    expect(raw).toContain(Buffer.from('binary/encrypted').toString('base64'));
    const decoded = await show(workflowId, ['--codec-endpoint', server.url, '--codec-auth', `Bearer ${TOKEN}`]);
    expect(decoded).toContain(DECODED);
    // Without the token the codec server refuses, and the CLI shows no plaintext.
    const refused = await show(workflowId, ['--codec-endpoint', server.url]).catch((err: { stdout?: string; stderr?: string }) => `${err.stdout ?? ''}${err.stderr ?? ''}`);
    expect(refused).not.toContain(DECODED);
  } finally {
    await handle.terminate('probe read');
  }
});
