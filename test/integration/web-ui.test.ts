/**
 * Every run reads well in the Web UI, checked in a real headless Chromium (Debian's, scripts/chromium.sh)
 * on the test dev server's UI, for a shard run by a real `nstance worker` process: the list and each
 * workflow type's page, opened by direct URL, show their input decoded (through the codec server), their
 * summaries, details, current details and activity summaries; the CLI's Web UI links open the runs it started; `nstance secrets rotate-key`'s run too (the
 * shard keeps its secrets in object storage). Screenshots and page texts are kept in test/artifacts/browser
 * (git-ignored).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { gcWorkflowId, groupWorkflowId, instanceWorkflowId, leaderWorkflowId } from '../../common/names';
import { keyRotationWorkflowId } from '../../workflows/key-rotation-api';
import { groupStatus } from '../../client/ops/status';
import { ARTIFACTS_DIR, findChromium, openAndWaitForText, openBrowser, pageTextShowing, shows, type BrowserSession } from '../support/browser';
import { useObservedShard } from '../support/observed-shard';

jest.setTimeout(240_000);

const o = useObservedShard('webui');
const { shard, ref, ui } = o;

describe('Web UI', () => {
  let session: BrowserSession | undefined;
  const chromium = findChromium();

  beforeAll(async () => {
    if ('path' in chromium && process.env.NSTANCE_TEST_BROWSER !== 'off') session = await openBrowser({ executablePath: chromium.path, artifacts: 'browser' });
  });
  afterAll(async () => {
    await session?.close();
  });

  // No browser is a failure, not a pass: only NSTANCE_TEST_BROWSER=off skips it, by name.
  const skipBrowser = process.env.NSTANCE_TEST_BROWSER === 'off';
  const browserTest = skipBrowser ? test.skip : test;
  if (skipBrowser) console.warn('Web UI browser test skipped: NSTANCE_TEST_BROWSER=off');

  browserTest('the list and every workflow type\'s page show their summaries and details', async () => {
    if (!('path' in chromium)) throw new Error(`no Chromium could be installed (${chromium.missing}); scripts/chromium.sh installs Debian's. NSTANCE_TEST_BROWSER=off skips this test`);
    const s = session as BrowserSession;
    expect(ui).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const client = o.stack.h.client;
    const runOf = async (workflowId: string) => (await client.workflow.getHandle(workflowId).describe()).runId;
    const page = await s.newPage();

    // The list, filtered to this shard, by direct URL. (The UI's list has no summary column, 2.54 included: the
    // summaries are checked on each run's page below.)
    const list = `${ui}/namespaces/default/workflows?query=${encodeURIComponent(`NstanceShard = "${shard}"`)}`;
    await openAndWaitForText(page, list, groupWorkflowId(shard, 'default', 'web'), 60_000);
    for (const type of ['groupWorkflow', 'instanceWorkflow', 'leaderWorkflow', 'gcWorkflow']) await page.getByText(type, { exact: true }).first().waitFor({ timeout: 15_000 });
    await s.screenshot(page, 'workflows-list');

    // Each run's page, by direct URL: the header, its input (stored encrypted, decoded by the UI through the
    // codec server: every workflow's input names its shard), the User Metadata tab (static summary and details,
    // current details of a running run) and the event history (activity summaries). What is missing is
    // collected, and every page's text is kept next to its screenshots, so one run shows all that is wrong.
    const missing: string[] = [];
    type Expected = { metadata: (string | RegExp)[]; history: (string | RegExp)[] };
    const decodedInput = `"shard": "${shard}"`;
    const check = async (name: string, url: string, expected: Expected) => {
      await openAndWaitForText(page, url, 'User Metadata');
      const history = await pageTextShowing(page, [decodedInput, ...expected.history], 30_000);
      // What the page opens on (its header and decoded input), as docs/images/decoded-history.png shows it.
      await s.screenshot(page, `${name}-decoded`, { fullPage: false });
      if (!shows(history, decodedInput)) missing.push(`${name}: the input decoded (${decodedInput})`);
      await s.screenshot(page, `${name}-history`);
      await page.getByText('User Metadata', { exact: true }).first().click();
      await page.getByTestId('user-metadata').first().waitFor({ timeout: 10_000 });
      const metadata = await pageTextShowing(page, expected.metadata, 15_000);
      await s.screenshot(page, `${name}-user-metadata`);
      fs.writeFileSync(path.join(ARTIFACTS_DIR, 'browser', `${name}.txt`), `${metadata}\n----- history -----\n${history}`);
      for (const t of [...expected.metadata, ...expected.history]) if (!shows(metadata + history, t)) missing.push(`${name}: ${String(t)}`);
    };
    const pageOf = async (workflowId: string) => `${ui}/namespaces/default/workflows/${encodeURIComponent(workflowId)}/${await runOf(workflowId)}/history`;

    // The group's first run, from the link `config apply` printed: its static summary and details.
    const groupLink = /Web UI: (\S+)/.exec(o.applyOutput.split('\n').find((l) => l.includes(encodeURIComponent(groupWorkflowId(shard, 'default', 'web')))) ?? '')?.[1];
    expect(groupLink).toBeDefined();
    await check('group-first-run', groupLink as string, {
      metadata: ['group default/web · size 2 · template web', /shard:?\s*webui-/],
      history: [/load the spec of default\/web/, /describe \d+ instances? \(i-\w+/],
    });
    // Its current run: current details.
    await check('group', await pageOf(groupWorkflowId(shard, 'default', 'web')), { metadata: [/desired 2 · running 2/], history: [] });

    // An instance: its group, kind, template and type, and its EC2 instance in its current details. Its group's start
    // batch launched and audited it (that activity's summary names the group, type and instances), and without
    // target groups it runs no activity of its own until it leaves.
    const member = (await groupStatus(client, ref)).members.find((m) => m.phase === 'in-service');
    expect(member).toBeDefined();
    const instanceId = member?.instanceId as string;
    await check('instance', await pageOf(instanceWorkflowId(shard, instanceId)), {
      metadata: [`instance ${instanceId} of default/web · kind web · template web · m7g.large`, /in-service/, new RegExp(`EC2 instance:?\\s*${member?.ec2InstanceId}`)],
      history: [],
    });
    // The leader (its ENI move names the ENI, the instance and the epoch) and the garbage collector.
    await check('leader', await pageOf(leaderWorkflowId(shard)), {
      metadata: [`leader of shard ${shard}`, /epoch:?\s*1/],
      history: [new RegExp(`attach eni-\\w+ to ${o.w1.ec2InstanceId} \\(worker w1\\) at epoch ${o.epoch}`)],
    });
    // The collector passes every 2 s here, so its current run has usually continued as new (no static summary
    // there): its first run, from the link `config apply` printed, has the summary; the current run its details.
    const gcLink = /Web UI: (\S+)/.exec(o.applyOutput.split('\n').find((l) => l.includes(encodeURIComponent(gcWorkflowId(shard)))) ?? '')?.[1];
    expect(gcLink).toBeDefined();
    await check('gc-first-run', gcLink as string, { metadata: [`garbage collector of shard ${shard}`], history: [] });
    await check('gc', await pageOf(gcWorkflowId(shard)), { metadata: [/next pass/], history: [] });

    // The key rotation, from the link `nstance secrets rotate-key` printed (it waits for the run, which finds the
    // cluster PKI's secrets already under the one key): its static summary and details, and its activities'
    // summaries. (It has ended when the page opens: current details are checked on the running group above.)
    const rotated = await o.stack.cli(['secrets', 'rotate-key', '--ui-url', ui]);
    expect(rotated).toMatch(/key rotation done: every secret checked in 1 pass/);
    const rotationLink = /Web UI: (\S+)/.exec(rotated)?.[1];
    expect(rotationLink).toContain(`/workflows/${encodeURIComponent(keyRotationWorkflowId(shard))}/`);
    await check('key-rotation', rotationLink as string, {
      metadata: [`nstance secrets rotate-key (shard ${shard}, by test)`, /does:?\s*re-encrypts every object-storage secret/, /page size:?\s*100 secrets per activity/],
      history: [new RegExp(`count shard ${shard}'s object-storage secrets`), /re-encrypt up to 100 secrets under key \S+, from the first/],
    });
    expect(missing).toEqual([]);
  });
});
