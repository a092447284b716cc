/** Debian Chromium through playwright-core, with the project's fixed flag set (SPEC §6). */
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/**
 * Where screenshots go: a temp folder during `npm test` (the tracked docs/screenshots/*.png stay
 * as they are); `npm run screenshots` sets QUAROT_SCREENSHOTS=docs/screenshots to refresh them on purpose.
 */
export const SCREENSHOTS = process.env.QUAROT_SCREENSHOTS
  ? path.resolve(ROOT, process.env.QUAROT_SCREENSHOTS)
  : path.join(tmpdir(), 'quarot-studio-screenshots');

const ARGS = [
  '--enable-unsafe-webgpu',
  '--no-sandbox',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function launch(): Promise<Browser> {
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: ARGS, headless: true });
}

export async function openPage(browser: Browser, url: string): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  await page.goto(url);
  // The app has applied the link (model, settings) once data-ready is set.
  await page.waitForSelector('main[data-ready="true"]');
  return { page, errors };
}

export type Status = 'idle' | 'running' | 'done' | 'error';

export async function waitForStatus(page: Page, status: Status, timeout = 120_000): Promise<void> {
  await page.waitForSelector(`main[data-status="${status}"]`, { timeout });
}

export async function screenshot(page: Page, name: string, opts: { fullPage?: boolean; selector?: string } = {}): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const file = path.join(SCREENSHOTS, `${name}.png`);
  if (opts.selector) await page.locator(opts.selector).first().screenshot({ path: file });
  else await page.screenshot({ path: file, fullPage: opts.fullPage ?? false });
}
