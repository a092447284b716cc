/**
 * (b) A shareable link with autorun against a local mock hub (CORS-enabled) completes; the
 * settings in the link are restored into the form; the token never appears in the URL.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startMockHub, type MockHub } from '../test/support/mock-hub';
import { makeTinyQwen2 } from '../src/demo/tiny-qwen2';
import { writeTinyQwen2 } from '../src/demo/tiny-qwen2-node';
import { launch, openPage, screenshot, waitForStatus } from './browser';

const REPO = 'e2e-org/tiny-qwen2';
let browser: Browser;
let hub: MockHub;
const dir = mkdtempSync(path.join(tmpdir(), 'quarot-e2e-hub-'));

beforeAll(async () => {
  const model = makeTinyQwen2({ hidden: 64, intermediate: 128, layers: 2, heads: 4, kvHeads: 2, vocab: 96, tie: true, seed: 7, outliers: true });
  await writeTinyQwen2(dir, model, { dtype: 'BF16', shards: 2 });
  hub = await startMockHub({ repos: { [REPO]: { dir } } });
  browser = await launch();
});
afterAll(async () => {
  await browser?.close();
  await hub?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('shareable link against a hub', () => {
  it('autoruns ?model=<repo>&hub=<mock>&autorun=1 to completion with the link\'s settings', async () => {
    const base = inject('baseUrl');
    const query = new URLSearchParams({ model: REPO, hub: hub.url, bits: '8', scheme: 'per_tensor', clip: 'absmax', rotation: 'block', block: '16', seed: '3', autorun: '1', backend: 'cpu' });
    const { page, errors } = await openPage(browser, `${base}?${query}`);
    await waitForStatus(page, 'done', 120_000);
    // The link's settings were restored into the form.
    await expect(page.getByRole('combobox', { name: /^Bits/ }).inputValue()).resolves.toBe('8');
    await expect(page.getByRole('combobox', { name: /^Rotation/ }).inputValue()).resolves.toBe('block');
    await expect(page.getByLabel('Block size').inputValue()).resolves.toBe('16');
    await expect(page.getByLabel('Seed').inputValue()).resolves.toBe('3');
    const readme = await page.locator('[data-testid="readme"]').innerText();
    expect(readme).toContain(`# ${REPO}`);
    expect(readme).toContain('W8 per_tensor/absmax');
    // The range reads went to the mock hub.
    expect(hub.log.some((e) => e.path.endsWith('.safetensors') && e.status === 206)).toBe(true);
    await page.getByRole('button', { name: 'Download bundle' }).waitFor();
    await screenshot(page, '04-hub-autorun', { fullPage: false });
    expect(errors).toEqual([]);
  });

  it('keeps a typed token out of the URL and names a missing repo', async () => {
    const base = inject('baseUrl');
    const { page } = await openPage(browser, `${base}?model=${encodeURIComponent('e2e-org/missing')}&hub=${encodeURIComponent(hub.url)}&backend=cpu`);
    // The missing repo is reported before running (metadata only)…
    await page.locator('section[aria-labelledby="pre-h"] [data-testid="error"]').waitFor();
    await page.getByLabel(/Access token/).fill('hf_secretsecret');
    await page.getByLabel(/Access token/).blur();
    // …named in that one message, with Run disabled and the reason beside it (not the same error twice after a click).
    const msg = await page.locator('section[aria-labelledby="pre-h"] [data-testid="error"]').innerText();
    expect(msg).toMatch(/e2e-org\/missing/);
    expect(await page.getByRole('button', { name: 'Run', exact: true }).isDisabled()).toBe(true);
    expect(await page.locator('[data-testid="run-blocked"]').innerText()).toMatch(/cannot be processed/);
    expect(page.url()).not.toContain('hf_');
    expect(await page.evaluate(() => JSON.stringify(localStorage) + JSON.stringify(sessionStorage))).not.toContain('hf_');
  });
});
