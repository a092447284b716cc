/**
 * Helpers for the WebKit specs: one MiniBrowser session per spec file, the app's ready/status
 * attributes, downloads read from the browser's XDG download folder, and screenshots.
 *
 * Screenshots go to test-results/webkit-screenshots/ (ignored) during `npm test`;
 * `npm run screenshots:webkit` sets WEBKIT_SCREENSHOT_DIR=docs/screenshots to refresh the
 * committed ones on purpose.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { inject } from 'vitest';
import { ROOT } from '../browser';
import { Session, xpathString, type SessionOptions } from './webdriver';

export { ROOT };
export const SCREENSHOT_DIR = path.resolve(ROOT, process.env.WEBKIT_SCREENSHOT_DIR ?? 'test-results/webkit-screenshots');

export function startSession(opts: SessionOptions = {}): Promise<Session> {
  return Session.start(inject('webdriverUrl'), opts);
}

/**
 * Opens the app at `query` (relative to the preview server) and waits until it has applied the
 * link. Page errors from then on are collected in the page; `pageErrors` reads them.
 */
export async function openApp(s: Session, query = ''): Promise<void> {
  await s.goto(`${inject('baseUrl')}${query}`);
  await s.execute(`
    window.__errors = [];
    addEventListener('error', (e) => window.__errors.push('error: ' + e.message));
    addEventListener('unhandledrejection', (e) => window.__errors.push('unhandledrejection: ' + String(e.reason && e.reason.stack || e.reason)));
    const orig = console.error.bind(console);
    console.error = (...a) => { window.__errors.push('console: ' + a.map(String).join(' ')); orig(...a); };
  `);
  await s.waitFor('main[data-ready="true"]');
  // The worker's capability badge arrives last and can reflow the header; clicks wait for it.
  await s.waitUntil('return document.querySelector("[aria-label=\'Browser capabilities\']")?.innerText.includes("in workers")', 'the worker capability badge');
}

export function pageErrors(s: Session): Promise<string[]> {
  return s.execute<string[]>('return window.__errors || []');
}

export type Status = 'idle' | 'running' | 'done' | 'error';

export async function waitForStatus(s: Session, status: Status, timeoutMs = 120_000): Promise<void> {
  await s.waitFor(`main[data-status="${status}"]`, timeoutMs);
}

/** innerText of the first element matching css ('' when there is none). */
export function innerText(s: Session, css: string): Promise<string> {
  return s.execute<string>('const e = document.querySelector(arguments[0]); return e ? e.innerText : "";', css);
}

/**
 * Chooses an option of the `<select>` in the label captioned `label` with a real click on the
 * option; `within` is an XPath prefix that scopes the label (e.g. a section).
 */
export async function selectOption(s: Session, label: string, value: string, within = ''): Promise<void> {
  await s.click(await s.waitForXPath(`${within}//label[span[normalize-space(.)=${xpathString(label)}]]//select/option[@value=${xpathString(value)}]`));
}

/** The current value of the `<select>`/`<input>` in the label captioned `label`. */
export async function fieldValue(s: Session, label: string, within = ''): Promise<string> {
  return s.property<string>(await s.waitForXPath(`${within}//label[span[normalize-space(.)=${xpathString(label)}]]//*[self::select or self::input]`), 'value');
}

/** Replaces the text of the `<input>` inside the label whose caption is `label`. */
export async function fillField(s: Session, label: string, text: string, within = ''): Promise<void> {
  const input = await s.waitForXPath(`${within}//label[span[normalize-space(.)=${xpathString(label)}]]//input`);
  await s.clear(input);
  await s.sendKeys(input, text);
}

export async function screenshot(s: Session, name: string, css?: string): Promise<void> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  if (css) await s.execute('document.querySelector(arguments[0]).scrollIntoView({ block: "start" })', css);
  const png = css ? await s.elementScreenshot(css) : await viewportScreenshot(s);
  writeFileSync(path.join(SCREENSHOT_DIR, `webkit-${name}.png`), png);
}

/**
 * The viewport, bounded: WebKitGTK's viewport capture now and then never answers (it used to
 * stall a test until the test's own timeout). A repaint is forced and the capture tried again;
 * an element screenshot of <main> (a capture that has not been seen to stall) is the last
 * resort, so a picture never fails or stalls a test.
 */
async function viewportScreenshot(s: Session): Promise<Buffer> {
  const forceRepaint = () => s.execute('const st = document.documentElement.style; st.outline = "1px solid transparent"; void document.body.offsetHeight; requestAnimationFrame(() => (st.outline = ""));');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      return await s.screenshot(15_000);
    } catch (e) {
      console.warn(`WebKit viewport screenshot, attempt ${attempt + 1}: ${(e as Error).message}`);
      await forceRepaint();
    }
  }
  return s.elementScreenshot('main');
}

// ---- downloads ---------------------------------------------------------------------------

/** Empties the browser's download folder (before a download the spec will read). */
export function clearDownloads(): void {
  const dir = inject('downloadDir');
  for (const f of readdirSync(dir)) rmSync(path.join(dir, f), { recursive: true, force: true });
}

/** Waits for a finished download named `name` (WebKit writes it whole, then its size settles). */
export async function waitForDownload(name: string, timeoutMs = 30_000): Promise<Uint8Array> {
  const file = path.join(inject('downloadDir'), name);
  const end = Date.now() + timeoutMs;
  let last = -1;
  for (;;) {
    const partial = readdirSync(inject('downloadDir')).some((f) => f !== name && f.startsWith(name));
    if (existsSync(file) && !partial) {
      const size = statSync(file).size;
      if (size > 0 && size === last) return new Uint8Array(readFileSync(file));
      last = size;
    }
    if (Date.now() > end) throw new Error(`no download ${name} in ${inject('downloadDir')} after ${timeoutMs} ms (there: ${readdirSync(inject('downloadDir')).join(', ') || 'nothing'})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
