/**
 * GPTQ in the app: a link with autorun runs the tinystories-260k demo with GPTQ on its built-in
 * calibration (offline); the tensor table and chart show the output error of GPTQ against RTN;
 * the downloaded zip says method gptq and equals, file by file, the CLI's bundle with the same
 * settings and calibration.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { unzipSync } from 'fflate';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { launch, openPage, ROOT, screenshot, waitForStatus } from './browser';
import { cliBundle, compareWithCli } from './bundle-compare';

let browser: Browser;
const tmp = mkdtempSync(path.join(tmpdir(), 'quarot-e2e-gptq-'));

beforeAll(async () => {
  browser = await launch();
});
afterAll(async () => {
  await browser?.close();
  rmSync(tmp, { recursive: true, force: true });
});

const HAVE_STORIES = existsSync(path.join(ROOT, 'public/demo/tinystories-260k/model.safetensors'));
const pctValue = (s: string): number => Number(s.replace('%', '').trim());

describe('GPTQ in the app', () => {
  it.runIf(HAVE_STORIES)('a link with autorun runs GPTQ on the demo calibration; output error GPTQ < RTN; the zip equals the CLI bundle', async () => {
    const base = inject('baseUrl');
    const query = 'model=tinystories-260k&method=gptq&calib=demo&csamples=16&cseqlen=128&cseed=0';
    const { page, errors } = await openPage(browser, `${base}?${query}&backend=cpu&autorun=1`);
    await waitForStatus(page, 'done', 170_000);

    // The table has the output error columns, and GPTQ's is below RTN's on every projection.
    const heads = await page.locator('[data-testid="tensor-table"] thead th').allInnerTexts();
    expect(heads.map((h) => h.trim())).toEqual(expect.arrayContaining(['output err. GPTQ', 'output err. RTN']));
    const gptq = (await page.locator('[data-testid="tensor-table"] td[data-col="calib"]').allInnerTexts()).map((t) => t.trim()).filter((t) => t !== '—').map(pctValue);
    const rtn = (await page.locator('[data-testid="tensor-table"] td[data-col="calib-rtn"]').allInnerTexts()).map((t) => t.trim()).filter((t) => t !== '—').map(pctValue);
    expect(gptq).toHaveLength(35); // 5 layers × 7 projections
    expect(rtn).toHaveLength(35);
    gptq.forEach((g, i) => expect(g).toBeLessThan(rtn[i]));
    await page.waitForSelector('[data-testid="calib-chart"] canvas');
    expect(await page.locator('[data-testid="calib-chart"]').innerText()).toMatch(/GPTQ [\d.]+ % vs RTN [\d.]+ %/);
    const summary = await page.locator('[data-testid="summary"]').innerText();
    expect(summary).toMatch(/mean output error GPTQ [\d.]+ % vs RTN [\d.]+ % \(-[\d.]+ %\); 35\/35 projections lower with GPTQ/);
    const notices = await page.locator('.notice').allInnerTexts();
    expect(notices.join('\n')).toContain('Calibration: tinystories-260k calib.tokens.json, 16 × 128 tokens');
    // The reproduction: the same link (calibration included) and the CLI command.
    expect(await page.locator('[data-testid="cli-command"]').innerText()).toContain('--method gptq --calib demo --calib-samples 16 --calib-seqlen 128 --calib-seed 0 --act-order true --damp 0.01');
    expect(await page.getByLabel('Link that reproduces this bundle').inputValue()).toContain('&method=gptq&actorder=1&damp=0.01&calib=demo&csamples=16&cseqlen=128&cseed=0');
    await screenshot(page, '10-gptq-done', { fullPage: true });

    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download bundle' }).click()]);
    expect(download.suggestedFilename()).toBe('tinystories-260k-quarot-w4-sp-mse-gptq.zip');
    const zipPath = path.join(tmp, 'gptq.zip');
    await download.saveAs(zipPath);
    const zipBytes = new Uint8Array(readFileSync(zipPath));
    const qc = JSON.parse(new TextDecoder().decode(unzipSync(zipBytes)['quantization_config.json']));
    expect(qc.method).toBe('gptq');
    expect(qc.gptq).toMatchObject({ damp: 0.01, act_order: true });
    expect(qc.calibration).toMatchObject({ source: 'tinystories-260k calib.tokens.json', samples: 16, seqlen: 128, tokens: 2048 });

    const cliOut = path.join(tmp, 'cli-gptq');
    const stdout = cliBundle('tinystories-260k', cliOut, ['--method', 'gptq', '--calib', 'demo', '--calib-samples', '16', '--calib-seqlen', '128']);
    const files = compareWithCli(zipBytes, cliOut);
    expect(files).toContain('model.safetensors');
    expect(stdout).toContain(summary.trim());
    expect(errors).toEqual([]);
  });

  it.runIf(HAVE_STORIES)('GPTQ settings are in the page and the link; a link naming a dropped file asks for it, then runs on the picked file', async () => {
    const base = inject('baseUrl');
    const { page, errors } = await openPage(browser, `${base}?model=tinystories-260k&method=gptq&calib=file%3Amy-calib.json&csamples=8&cseqlen=64&backend=cpu`);
    await expect.poll(() => page.getByLabel('Calibration source').inputValue()).toBe('file');
    expect(await page.getByLabel('Calibration samples').inputValue()).toBe('8');
    expect(await page.locator('[data-testid="method-settings"]').innerText()).toContain('the link names “my-calib.json”: pick it again');
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await waitForStatus(page, 'error');
    expect(await page.locator('section[aria-labelledby="progress-h"]').innerText()).toContain('“my-calib.json”, which cannot travel in a link');
    // Picking the file: the run uses it (a {"ids"} token stream here), and the bundle records its name.
    await page.getByTestId('calib-file').setInputFiles({
      name: 'my-calib.json', mimeType: 'application/json', buffer: readFileSync(path.join(ROOT, 'public/demo/tinystories-260k/calib.tokens.json')),
    });
    expect(await page.locator('[data-testid="method-settings"]').innerText()).toContain('my-calib.json');
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await waitForStatus(page, 'done', 170_000);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download bundle' }).click()]);
    const zipPath = path.join(tmp, 'dropped.zip');
    await download.saveAs(zipPath);
    const qc = JSON.parse(new TextDecoder().decode(unzipSync(new Uint8Array(readFileSync(zipPath)))['quantization_config.json']));
    expect(qc.calibration).toMatchObject({ source: 'my-calib.json', samples: 8, seqlen: 64, tokens: 512 });
    expect(await page.locator('[data-testid="cli-command"]').innerText()).toContain('--calib <path to my-calib.json> --calib-samples 8 --calib-seqlen 64');
    // Switching to the demo's built-in calibration puts it in the URL.
    await page.getByLabel('Calibration source').selectOption('demo');
    await expect.poll(() => page.url()).toContain('calib=demo&csamples=8&cseqlen=64');
    expect(errors).toEqual([]);
  });
});
