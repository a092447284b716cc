/**
 * The WebGPU path in the browser: Chromium's SwiftShader adapter inside the pipeline worker
 * (`--enable-unsafe-webgpu`). SPEC §3: same input and settings give a byte-identical bundle on
 * every backend, so the WebGPU-made zip must equal the CLI's (CPU) output.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { launch, openPage, ROOT, screenshot, waitForStatus } from './browser';
import { cliBundle, compareWithCli } from './bundle-compare';

let browser: Browser;
const tmp = mkdtempSync(path.join(tmpdir(), 'quarot-e2e-gpu-'));
beforeAll(async () => {
  browser = await launch();
});
afterAll(async () => {
  await browser?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe.runIf(existsSync(path.join(ROOT, 'public/demo/tinystories-260k/model.safetensors')))('WebGPU in the worker', () => {
  it('runs tinystories-260k on the worker\'s WebGPU adapter and matches the CLI byte for byte', async () => {
    const { page, errors } = await openPage(browser, `${inject('baseUrl')}?model=tinystories-260k&backend=webgpu&autorun=1`);
    await waitForStatus(page, 'done', 150_000);
    const backend = await page.locator('text=Backend:').first().innerText();
    expect(backend).toContain('WebGPU');
    await screenshot(page, '08-webgpu-done', { fullPage: false });
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download bundle' }).click()]);
    const zipPath = path.join(tmp, 'stories-gpu.zip');
    await download.saveAs(zipPath);
    const cliOut = path.join(tmp, 'cli-stories');
    cliBundle('tinystories-260k', cliOut);
    compareWithCli(new Uint8Array(readFileSync(zipPath)), cliOut);
    expect(errors).toEqual([]);
  });
});
