/**
 * (a) Demo model → Run → table and histograms render → "Download bundle" → every file in the
 * downloaded zip equals the CLI's output for the same model and settings, byte for byte.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { launch, openPage, ROOT, screenshot, waitForStatus } from './browser';
import { cliBundle, compareWithCli } from './bundle-compare';

let browser: Browser;
const tmp = mkdtempSync(path.join(tmpdir(), 'quarot-e2e-demo-'));

beforeAll(async () => {
  browser = await launch();
});
afterAll(async () => {
  await browser?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('demo model, end to end', () => {
  it('runs the random demo model on the CPU path and downloads a bundle identical to the CLI output', async () => {
    const base = inject('baseUrl');
    const { page, errors } = await openPage(browser, `${base}?model=tiny-random-qwen2&backend=cpu`);
    await page.waitForSelector('[data-testid="preflight"]');
    await waitForStatus(page, 'idle');
    await screenshot(page, '01-start', { fullPage: true });

    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await waitForStatus(page, 'done');
    // Table and histograms rendered.
    const rows = await page.locator('[data-testid="tensor-table"] tbody tr').count();
    expect(rows).toBeGreaterThan(20);
    await page.waitForSelector('[data-testid="histogram-canvas"]');
    await page.locator('[data-testid="tensor-table"] tbody tr', { hasText: 'q_proj' }).first().click();
    await page.getByRole('button', { name: 'Compare block sizes' }).click();
    await page.waitForSelector('[data-testid="block-compare"]');
    expect(await page.locator('[data-testid="block-compare"] tbody tr').count()).toBe(7); // plain, 16…256, full
    await screenshot(page, '02-done', { fullPage: true });
    await screenshot(page, '03-inspect', { selector: 'section[aria-labelledby="inspect-h"]' });

    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download bundle' }).click()]);
    expect(download.suggestedFilename()).toMatch(/^tiny-random-qwen2-quarot-w4-sp-mse\.zip$/);
    const zipPath = path.join(tmp, 'app.zip');
    await download.saveAs(zipPath);

    const cliOut = path.join(tmp, 'cli-random');
    const stdout = cliBundle('tiny-random-qwen2', cliOut);
    const files = compareWithCli(new Uint8Array(readFileSync(zipPath)), cliOut);
    expect(files).toContain('model.safetensors');
    expect(files).toContain('README.md');
    // The page shows the same summary the CLI prints.
    const summary = await page.locator('[data-testid="summary"]').innerText();
    expect(stdout).toContain(summary.trim());
    expect(errors).toEqual([]);
  });

  it.runIf(existsSync(path.join(ROOT, 'public/demo/tinystories-260k/model.safetensors')))(
    'writes into browser storage (OPFS) and downloads that bundle as a zip, manifest included, equal to the CLI folder',
    async () => {
      const base = inject('baseUrl');
      const { page, errors } = await openPage(browser, `${base}?model=tinystories-260k&backend=cpu&rotation=none&clip=absmax`);
      await page.getByLabel('Destination').selectOption('opfs');
      await page.getByRole('button', { name: 'Run', exact: true }).click();
      await waitForStatus(page, 'done');
      expect(await page.locator('[data-testid="result"]').innerText()).toContain('browser storage (OPFS)');
      const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download bundle' }).click()]);
      const zipPath = path.join(tmp, 'opfs.zip');
      await download.saveAs(zipPath);
      const cliOut = path.join(tmp, 'cli-stories-plain');
      cliBundle('tinystories-260k', cliOut, ['--rotation', 'none', '--clip', 'absmax']);
      const files = compareWithCli(new Uint8Array(readFileSync(zipPath)), cliOut);
      expect(files).toContain('manifest.sha256');
      expect(errors).toEqual([]);
    },
  );
});
