/**
 * Screenshots of the Temporal Web UI (or any loopback page) for the docs, with the browser
 * harness the tests use (test/support/browser.ts: Debian's Chromium, headless, offline).
 *
 *   npm run build
 *   node dist/scripts/ui-screenshot.js --url http://127.0.0.1:8233/namespaces/default/workflows \
 *     --wait-for "group default/web" --out docs/images/workflows.png [--width 1440 --height 900] [--click "Input and Results"]
 *
 * --wait-for: text the page must show before the shot (the UI long-polls: nothing else says
 * it is ready); --click: text of an element to click first (a tab, an event), repeatable.
 * Exit 1 with the reason when the browser cannot be had or the text never shows.
 */
import * as path from 'node:path';
import { findChromium, openAndWaitForText, openBrowser } from '../test/support/browser';

interface Args {
  url: string;
  out: string;
  waitFor?: string;
  clicks: string[];
  width: number;
  height: number;
  timeoutMs: number;
}

function parseArgs(argv: string[]): Args {
  const args: Partial<Args> & { clicks: string[] } = { clicks: [], width: 1440, height: 900, timeoutMs: 30_000 };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === '--url') args.url = value;
    else if (flag === '--out') args.out = value;
    else if (flag === '--wait-for') args.waitFor = value;
    else if (flag === '--click') args.clicks.push(value);
    else if (flag === '--width') args.width = Number(value);
    else if (flag === '--height') args.height = Number(value);
    else if (flag === '--timeout-ms') args.timeoutMs = Number(value);
    else throw new Error(`unknown option ${flag}`);
  }
  if (!args.url || !args.out) throw new Error('usage: ui-screenshot --url URL --out FILE.png [--wait-for TEXT] [--click TEXT]... [--width N --height N]');
  return args as Args;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const browserPath = findChromium();
  if ('missing' in browserPath) throw new Error(`no Chromium: ${browserPath.missing}`);
  const out = path.resolve(args.out);
  const session = await openBrowser({ executablePath: browserPath.path, artifacts: path.dirname(out), viewport: { width: args.width, height: args.height } });
  try {
    const page = await session.newPage();
    if (args.waitFor) await openAndWaitForText(page, args.url, args.waitFor, args.timeoutMs);
    else await page.goto(args.url, { waitUntil: 'domcontentloaded' });
    for (const text of args.clicks) {
      await page.getByText(text).first().click({ timeout: args.timeoutMs });
      await page.waitForTimeout(500);
    }
    await page.screenshot({ path: out, fullPage: true });
    process.stdout.write(`${out}\n`);
  } finally {
    await session.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`ui-screenshot: ${(err as Error).message}\n`);
  process.exitCode = 1;
});
