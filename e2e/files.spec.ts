/**
 * (c) Model files dropped on the page (a DataTransfer dispatched in the page) run to the end;
 * (e) a broken model — a truncated safetensors file — shows its specific error before running,
 * Run stays disabled with the reason, and no bundle is offered.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { launch, openPage, ROOT, screenshot, waitForStatus } from './browser';

const FIXTURE = path.resolve(ROOT, '..', 'shared', 'fixtures', 'tinystories-260k');
const MODEL_FILES = ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];

let browser: Browser;
beforeAll(async () => {
  browser = await launch();
});
afterAll(async () => {
  await browser?.close();
});

/** Drops files (name → bytes) on the page's drop zone as a real drop event with a DataTransfer. */
async function dropFiles(page: Page, files: { name: string; bytes: Uint8Array }[]): Promise<void> {
  await page.getByRole('tab', { name: 'Files / folder' }).click();
  const payload = files.map((f) => ({ name: f.name, b64: Buffer.from(f.bytes).toString('base64') }));
  await page.evaluate((list) => {
    const dt = new DataTransfer();
    for (const f of list) {
      const bin = atob(f.b64);
      const bytes = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      dt.items.add(new File([bytes], f.name));
    }
    const zone = document.querySelector('[data-testid="dropzone"]')!;
    zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
    zone.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, payload);
}

const fixtureFiles = (): { name: string; bytes: Uint8Array }[] => MODEL_FILES.map((name) => ({ name, bytes: new Uint8Array(readFileSync(path.join(FIXTURE, name))) }));

describe('dropped files', () => {
  it('runs a model dropped as files', async () => {
    const { page, errors } = await openPage(browser, `${inject('baseUrl')}?backend=cpu&bits=8`);
    await dropFiles(page, fixtureFiles());
    await page.waitForSelector('[data-testid="preflight"]');
    expect(await page.locator('[data-testid="preflight"]').innerText()).toContain('62'); // tensors in the fixture
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await waitForStatus(page, 'done');
    expect(await page.locator('[data-testid="tensor-table"] tbody tr').count()).toBeGreaterThan(30);
    expect(await page.locator('[data-testid="readme"]').innerText()).toContain('W8 sp/mse');
    // A dropped model has no link of its own: the URL keeps only the settings.
    expect(new URL(page.url()).searchParams.get('model')).toBeNull();
    await screenshot(page, '05-dropped-files', { fullPage: false });
    expect(errors).toEqual([]);
  });

  it('names the file and problem of a truncated safetensors file before running, disables Run, and offers no bundle', async () => {
    const { page } = await openPage(browser, `${inject('baseUrl')}?backend=cpu`);
    const files = fixtureFiles().map((f) => (f.name === 'model.safetensors' ? { ...f, bytes: f.bytes.subarray(0, 600_000) } : f));
    await dropFiles(page, files);
    // Seen before running (headers only)…
    await page.waitForSelector('[data-testid="error"]');
    expect(await page.locator('[data-testid="error"]').first().innerText()).toMatch(/model\.safetensors.*past its end \(file is 600000 bytes\)/s);
    // …and Run stays off with the reason beside it: one message, not the same error again after a click.
    expect(await page.getByRole('button', { name: 'Run', exact: true }).isDisabled()).toBe(true);
    expect(await page.locator('[data-testid="run-blocked"]').innerText()).toMatch(/cannot be processed/);
    expect(await page.locator('[data-testid="error"]').count()).toBe(1);
    expect(await page.getByRole('button', { name: 'Download bundle' }).count()).toBe(0);
    await screenshot(page, '06-broken-model', { fullPage: false });
  });
});
