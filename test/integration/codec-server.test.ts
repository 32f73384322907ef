/**
 * The codec server as Temporal's own tools use it:
 * - `temporal workflow show` reads a history through it (--codec-endpoint, the protocol the Web UI
 *   speaks), and sees the payloads decoded, where the same command without it sees ciphertext only;
 * - a real browser (headless Chromium, test/support/browser.ts) signs in on its /login with the
 *   token, and the stack's Web UI, set to include credentials to it, then shows a payload decoded,
 *   which it did not before the login nor after the logout.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { nstanceDataConverter } from '../../adapters/temporal/data-converter';
import { NstancePayloadCodec } from '../../adapters/temporal/payload-codec';
import { payloadKeyRingFromEnv } from '../../adapters/temporal/payload-keys';
import { startCodecServer, type CodecServer } from '../../workers/codec-server';
import { stackEnv } from '../support/stack-env';
import { ARTIFACTS_DIR, findChromium, openAndWaitForText, openBrowser, pageTextShowing, shows } from '../support/browser';
import { STACK_UI_VAR } from '../support/global-setup';

jest.setTimeout(180_000);

const run = promisify(execFile);
const MARKER = `decoded-by-the-codec-server-${Date.now().toString(36)}`;
const TOKEN = 'codec-test-token';
/** The probe's input as `workflow show --output json` prints a decoded json/plain payload (data in base64). */
const DECODED = Buffer.from(JSON.stringify({ marker: MARKER })).toString('base64');
const ui = process.env[STACK_UI_VAR] ?? '';

let connection: Connection;
let server: CodecServer;

beforeAll(async () => {
  connection = await Connection.connect({ address: stackEnv().temporalAddress });
  server = await startCodecServer({ codec: new NstancePayloadCodec(payloadKeyRingFromEnv()!), auth: { mode: 'token', tokens: [TOKEN] }, allowedOrigins: [ui], host: '127.0.0.1', port: 0 });
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

// No browser is a failure, not a pass: only NSTANCE_TEST_BROWSER=off skips it, by name.
const browserTest = process.env.NSTANCE_TEST_BROWSER === 'off' ? test.skip : test;

browserTest('a browser signs in on the codec server, and the Web UI then shows the payload decoded; before and after, ciphertext only', async () => {
  const chromium = findChromium();
  if (!('path' in chromium)) throw new Error(`no Chromium could be installed (${chromium.missing}); scripts/chromium.sh installs Debian's. NSTANCE_TEST_BROWSER=off skips this test`);
  expect(ui).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  const client = new Client({ connection, dataConverter: nstanceDataConverter() });
  const workflowId = `codec-login-probe-${Date.now().toString(36)}`;
  const handle = await client.workflow.start('codecServerProbe', { taskQueue: 'codec-server-probe', workflowId, args: [{ marker: MARKER }] });
  const session = await openBrowser({ executablePath: chromium.path, artifacts: 'browser' });
  try {
    const page = await session.newPage();
    // The UI's codec settings as a person sets them in its "Codec Server" dialog (kept in local storage): this
    // codec server (the stack's UI points at the suite's token-less one), with cross-origin credentials on.
    await page.goto(`${ui}/namespaces/default/workflows`, { waitUntil: 'domcontentloaded' });
    const settings = { endpoint: server.url, includeCredentials: true, passAccessToken: false, overrideRemoteCodecConfiguration: true };
    // (A string: this project's TypeScript has no DOM types.)
    await page.evaluate(`for (const [k, v] of Object.entries(${JSON.stringify(settings)})) localStorage.setItem(k, JSON.stringify(v))`);
    // Cookies are kept per host, not per port: the UI's own (its _csrf) are the same host's, so the session is picked by name.
    const sessionCookies = async () => (await session.context.cookies(server.url)).filter((c) => c.name === 'nstance_codec_session');
    const history = `${ui}/namespaces/default/workflows/${encodeURIComponent(workflowId)}/${handle.firstExecutionRunId}/history`;
    const decodedInput = `"marker": "${MARKER}"`;
    const showsDecoded = async (expected: boolean, name: string) => {
      await openAndWaitForText(page, history, workflowId, 60_000);
      // The UI shows the raw payload when the codec refuses: wait long enough that it would have decoded.
      const text = await pageTextShowing(page, [decodedInput], expected ? 30_000 : 10_000);
      await session.screenshot(page, name);
      fs.writeFileSync(path.join(ARTIFACTS_DIR, 'browser', `${name}.txt`), text);
      expect({ name, decoded: shows(text, decodedInput) }).toEqual({ name, decoded: expected });
    };
    await showsDecoded(false, 'codec-login-before');

    // The login page, as a person uses it: a wrong token first.
    await page.goto(`${server.url}/login`);
    await page.getByLabel('Codec server token').fill('not-the-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('That is not a token this codec server accepts.').waitFor({ timeout: 10_000 });
    expect(await sessionCookies()).toEqual([]);
    await page.getByLabel('Codec server token').fill(TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Signed in' }).waitFor({ timeout: 10_000 });
    const [cookie] = await sessionCookies();
    expect(cookie).toMatchObject({ name: 'nstance_codec_session', httpOnly: true, sameSite: 'Strict', path: '/' });
    expect(cookie?.expires).toBeGreaterThan(Date.now() / 1000 + 7 * 3600);
    await session.screenshot(page, 'codec-login-signed-in');

    await showsDecoded(true, 'codec-login-decoded');

    await page.goto(`${server.url}/login`);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Signed out' }).waitFor({ timeout: 10_000 });
    expect(await sessionCookies()).toEqual([]);
    await showsDecoded(false, 'codec-login-after-logout');
  } finally {
    await session.close();
    await handle.terminate('probe read');
  }
});
