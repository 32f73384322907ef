/**
 * A real headless Chromium (Debian's, installed by scripts/chromium.sh) driven by
 * playwright-core, for the Web UI test and for documentation screenshots
 * (scripts/ui-screenshot.ts). It stays off the network: every host but loopback resolves
 * to nothing, and Chromium's own background traffic (updates, sync, metrics) is off.
 *
 * The Temporal Web UI long-polls, so nothing "settles" (Chromium's --virtual-time-budget
 * and Playwright's networkidle never end): pages are driven, by waiting for the text or
 * element a check needs.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/** The checkout (the nearest directory above holding scripts/chromium.sh: this file also runs compiled, from dist/). */
function repoRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'scripts', 'chromium.sh'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no scripts/chromium.sh above ${__dirname}`);
  }
}
const ROOT = repoRoot();
/** Screenshots and page dumps of test runs (git-ignored). */
export const ARTIFACTS_DIR = path.join(ROOT, 'test', 'artifacts');

/** Flags that keep the browser off the network and quiet. */
const OFFLINE_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--no-first-run',
  '--no-default-browser-check',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-default-apps',
  '--disable-domain-reliability',
  '--disable-sync',
  '--disable-breakpad',
  '--metrics-recording-only',
  '--no-pings',
  '--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication,CertificateTransparencyComponentUpdater',
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1',
];

/**
 * The Chromium binary: NSTANCE_CHROMIUM, or whatever scripts/chromium.sh finds or installs
 * (Debian's package). Undefined, with the reason, when none can be had.
 */
export function findChromium(): { path: string } | { missing: string } {
  try {
    const out = execFileSync('bash', [path.join(ROOT, 'scripts', 'chromium.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 15 * 60_000 });
    const found = out.trim().split('\n').pop();
    if (found && fs.existsSync(found)) return { path: found };
    return { missing: `scripts/chromium.sh printed no browser path (${out.trim() || 'nothing'})` };
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    return { missing: stderr || (err as Error).message };
  }
}

export interface BrowserSession {
  browser: Browser;
  context: BrowserContext;
  /** A new page that refuses any request to a host other than loopback. */
  newPage(): Promise<Page>;
  /** Saves a PNG (the full page, or with `{ fullPage: false }` what the viewport shows) as `<ARTIFACTS_DIR>/<dir>/<name>.png` and returns its path. */
  screenshot(page: Page, name: string, options?: { fullPage?: boolean }): Promise<string>;
  close(): Promise<void>;
}

export interface BrowserOptions {
  executablePath: string;
  /** Subdirectory of ARTIFACTS_DIR for screenshots (default "browser"), or an absolute directory. */
  artifacts?: string;
  viewport?: { width: number; height: number };
}

export async function openBrowser(options: BrowserOptions): Promise<BrowserSession> {
  const browser = await chromium.launch({ executablePath: options.executablePath, headless: true, args: OFFLINE_ARGS, timeout: 60_000 });
  const context = await browser.newContext({ viewport: options.viewport ?? { width: 1440, height: 900 }, colorScheme: 'light' });
  // Belt and braces with --host-resolver-rules: nothing leaves the machine.
  await context.route(/^(?!https?:\/\/(127\.0\.0\.1|localhost)[:/]).*/, (route) => route.abort('blockedbyclient'));
  const dir = path.isAbsolute(options.artifacts ?? '') ? (options.artifacts as string) : path.join(ARTIFACTS_DIR, options.artifacts ?? 'browser');
  fs.mkdirSync(dir, { recursive: true });
  return {
    browser,
    context,
    newPage: () => context.newPage(),
    async screenshot(page, name, { fullPage = true } = {}) {
      const file = path.join(dir, `${name.replace(/[^A-Za-z0-9._-]+/g, '_')}.png`);
      await page.screenshot({ path: file, fullPage });
      return file;
    },
    close: async () => {
      await context.close().catch(() => undefined);
      await browser.close();
    },
  };
}

/**
 * Opens `url` and waits until `text` is shown (visible somewhere on the page), reloading
 * while the UI has not caught up (visibility lags a start by a second or so). Throws with
 * what the page did show when the text never appears.
 */
export async function openAndWaitForText(page: Page, url: string, text: string | RegExp, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      await page.goto(url, { waitUntil: 'domcontentloaded', timeout: Math.max(1_000, deadline - Date.now()) });
      await page.getByText(text).first().waitFor({ state: 'visible', timeout: Math.min(10_000, Math.max(1_000, deadline - Date.now())) });
      return;
    } catch (err) {
      lastError = err;
    }
  }
  const shown = await page.locator('body').innerText().catch(() => '(no page)');
  throw new Error(`${url}: "${String(text)}" not shown within ${timeoutMs} ms (${(lastError as Error)?.message?.split('\n')[0]}); the page showed:\n${shown.slice(0, 2000)}`);
}

/** The text a page shows, its frames' included (the Web UI renders markdown, summaries and details, in frames). */
export async function pageText(page: Page): Promise<string> {
  const texts = await Promise.all(page.frames().map((frame) => frame.locator('body').innerText({ timeout: 5_000 }).catch(() => '')));
  return texts.join('\n');
}

/**
 * The page's text once it shows every one of `expected`, or as it stands after `timeoutMs`. The
 * Web UI fills a history in after the page is up (each summary is a payload the codec server
 * decodes), and later still on a loaded machine, so a fixed pause races it.
 */
export async function pageTextShowing(page: Page, expected: readonly (string | RegExp)[], timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await pageText(page);
    if (expected.every((e) => shows(text, e)) || Date.now() >= deadline) return text;
    await page.waitForTimeout(500);
  }
}

export function shows(text: string, expected: string | RegExp): boolean {
  return typeof expected === 'string' ? text.includes(expected) : expected.test(text);
}
