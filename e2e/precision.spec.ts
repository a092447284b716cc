/**
 * Precision in the app: on the tinystories-260k demo with its built-in calibration, a learned
 * codebook, a 10 % W8 budget and a bits override set through the UI (the override's errors shown
 * inline and keeping Run off); the planned map, then the map as written, which says 8 bits exactly
 * where the bundle's quantization_config.json does; the link reproduces the settings, and the
 * CLI command shown makes the same bytes. A link with bad values names them and waits.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { unzipSync } from 'fflate';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { launch, openPage, ROOT, screenshot, waitForStatus } from './browser';
import { cliBundle, compareWithCli } from './bundle-compare';

let browser: Browser;
const tmp = mkdtempSync(path.join(tmpdir(), 'quarot-e2e-precision-'));

beforeAll(async () => {
  browser = await launch();
});
afterAll(async () => {
  await browser?.close();
  rmSync(tmp, { recursive: true, force: true });
});

const HAVE_STORIES = existsSync(path.join(ROOT, 'public/demo/tinystories-260k/model.safetensors'));
const POLL = { timeout: 20_000 };
const OVERRIDE = 'layers.0.mlp.down_proj=8';

interface Cell { name: string; bits: string; learned: string }
async function mapCells(page: Page, scope: string): Promise<Cell[]> {
  return page.locator(`${scope} [data-testid="precision-map"] [data-testid="pm-cell"]`).evaluateAll((els) =>
    els.map((e) => ({ name: e.getAttribute('data-name')!, bits: e.getAttribute('data-bits')!, learned: e.getAttribute('data-learned')! })));
}

const runButton = (page: Page) => page.getByRole('button', { name: 'Run', exact: true });

describe('precision settings and map', () => {
  it.runIf(HAVE_STORIES)('learned + 10 % at 8 bits + an override by UI: the map shows 8 bits where quantization_config.json does; link and CLI reproduce it', async () => {
    const base = inject('baseUrl');
    const { page, errors } = await openPage(browser, `${base}?model=tinystories-260k&backend=cpu`);
    await page.getByLabel('Codebook', { exact: true }).selectOption('learned');
    // RTN with a budget needs calibration: its controls appear (the demo's built-in text by default).
    await expect.poll(() => page.getByLabel('Calibration source').count(), POLL).toBe(0);
    await page.getByLabel('W8 budget (%)', { exact: true }).fill('10');
    await expect.poll(() => page.getByLabel('Calibration source').inputValue(), POLL).toBe('demo');
    await page.getByLabel('Calibration samples').fill('16');
    await page.getByLabel('Calibration sample length').fill('128');
    await expect.poll(() => page.getByTestId('budget-cost').innerText(), POLL).toMatch(/W8 budget 10 %: at most [\d.]+ K of [\d.]+ K projection parameters at 8 bits: \+[\d.]+ kB once palettized.*Needs calibration data/);

    // Overrides: bad bits, then a pattern that matches nothing — each named inline, Run off; then a good one.
    const overrides = page.getByLabel('Bits overrides', { exact: true });
    await overrides.fill('down_proj=5');
    expect(await page.getByTestId('override-error').innerText()).toBe('--bits-override entry 1 ("down_proj=5"): bits "5" must be 4, 8 or 16 (16 = leave unquantized)');
    expect(await runButton(page).isDisabled()).toBe(true);
    await overrides.fill('dwn_proj=8');
    await expect.poll(() => page.getByTestId('override-error').innerText().catch(() => ''), POLL).toMatch(/^--bits-override: "dwn_proj" matches no quantized tensor of this model/);
    expect(await runButton(page).isDisabled()).toBe(true);
    expect(await page.getByTestId('run-blocked').innerText()).toContain('bits-override pattern matches no tensor');
    await overrides.fill(OVERRIDE);
    await expect.poll(() => page.getByTestId('override-error').count(), POLL).toBe(0);
    await expect.poll(() => runButton(page).isEnabled(), POLL).toBe(true);

    // The planned map: the override at 8, the other projections left to calibration, the embedding at 4, the head 16.
    const downName = 'model.layers.0.mlp.down_proj.weight';
    // (The preflight follows the settings after a short debounce.)
    await expect.poll(async () => (await mapCells(page, '[data-testid="preflight-panel"]')).find((c) => c.name === downName)?.bits, POLL).toBe('8');
    const planned = await mapCells(page, '[data-testid="preflight-panel"]');
    expect(planned).toHaveLength(5 * 7 + 2);
    expect(planned.find((c) => c.name === downName)).toEqual({ name: downName, bits: '8', learned: 'true' });
    expect(planned.filter((c) => c.name.includes('.layers.') && c.name !== downName).every((c) => c.bits === 'budget' && c.learned === 'true')).toBe(true);
    expect(planned.find((c) => c.name === 'model.embed_tokens.weight')?.bits).toBe('4');
    expect(planned.find((c) => c.name === 'lm_head.weight')?.bits).toBe('16');

    await runButton(page).click();
    await waitForStatus(page, 'done', 170_000);
    const written = await mapCells(page, '[data-testid="result"]');
    expect(written).toHaveLength(5 * 7 + 2);
    await screenshot(page, '11-precision-map', { selector: '[data-testid="result"] [data-testid="precision-map"]' });

    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download bundle' }).click()]);
    expect(download.suggestedFilename()).toBe('tinystories-260k-quarot-w4-sp-mse-lut-w8x10-mixed.zip');
    const zipPath = path.join(tmp, 'precision.zip');
    await download.saveAs(zipPath);
    const zipBytes = new Uint8Array(readFileSync(zipPath));
    const qc = JSON.parse(new TextDecoder().decode(unzipSync(zipBytes)['quantization_config.json']));
    expect(qc).toMatchObject({ codebook: 'learned', w8_budget: 0.1, bits_override: OVERRIDE });
    const perTensor = qc.weight_bits_per_tensor as Record<string, { bits: number; codebook: string }>;
    // Every quantized tensor the config lists is in the map with its bits and codebook kind; 8 exactly where it says 8.
    const quantizedCells = written.filter((c) => c.bits !== '16');
    expect(quantizedCells.map((c) => c.name).sort()).toEqual(Object.keys(perTensor).sort());
    for (const c of quantizedCells) {
      expect(c.bits, c.name).toBe(String(perTensor[c.name].bits));
      expect(c.learned, c.name).toBe(c.name.includes('.layers.') && perTensor[c.name].codebook === 'learned' ? 'true' : 'false');
    }
    const eight = written.filter((c) => c.bits === '8').map((c) => c.name);
    expect(eight).toContain(downName);
    expect(eight.length).toBeGreaterThan(1); // the budget picked some besides the override
    expect(written.filter((c) => c.bits === '4').length).toBeGreaterThan(0);

    // The link carries codebook, budget, override and the calibration; opened, it shows the same settings.
    const link = await page.getByLabel('Link that reproduces this bundle').inputValue();
    expect(link).toContain('&method=rtn&codebook=learned&w8budget=0.1&bitsoverride=layers.0.mlp.down_proj%3D8&calib=demo&csamples=16&cseqlen=128&cseed=0');
    const again = await openPage(browser, link);
    expect(await again.page.getByLabel('Codebook', { exact: true }).inputValue()).toBe('learned');
    expect(await again.page.getByLabel('W8 budget (%)', { exact: true }).inputValue()).toBe('10');
    expect(await again.page.getByLabel('Bits overrides', { exact: true }).inputValue()).toBe(OVERRIDE);
    expect(await again.page.getByLabel('Calibration samples').inputValue()).toBe('16');
    expect(await again.page.getByLabel('Calibration sample length').inputValue()).toBe('128');
    expect(await again.page.getByLabel('Shareable link').inputValue()).toBe(new URL(link).search);
    expect(again.errors).toEqual([]);
    await again.page.context().close();

    // The CLI command shown makes the same bytes.
    const cli = await page.locator('[data-testid="cli-command"]').innerText();
    expect(cli).toContain(`--method rtn --calib demo --calib-samples 16 --calib-seqlen 128 --calib-seed 0 --codebook learned --w8-budget 0.1 --bits-override ${OVERRIDE}`);
    const flags = cli.trim().split(' --out <dir> ')[1].split(' ');
    const cliOut = path.join(tmp, 'cli-precision');
    cliBundle('tinystories-260k', cliOut, flags);
    expect(compareWithCli(zipBytes, cliOut)).toContain('model.safetensors');

    // "Check quality" against plain RTN: the baseline drops the codebook, budget and overrides too
    // (and needs no calibration) — its perplexity is the CLI's `--rotation none` bundle's, scored by the eval CLI.
    const rtnOut = path.join(tmp, 'cli-plain-rtn');
    cliBundle('tinystories-260k', rtnOut, ['--rotation', 'none']);
    const ref = JSON.parse(execFileSync(process.execPath, [
      '--import', 'tsx', 'src/cli/eval.ts', '--model', 'public/demo/tinystories-260k', '--bundle', rtnOut, '--builtin-text', '--seqlen', '128', '--windows', '4', '--json',
    ], { cwd: ROOT, encoding: 'utf8' })) as { ppl_quantized: number };
    const panel = page.locator('section[aria-labelledby="quality-h"]');
    expect(await panel.getByLabel(/Compare with plain RTN/).isChecked()).toBe(true);
    await panel.getByLabel('Window length (tokens)').selectOption('128');
    await panel.getByLabel('Windows (0 = all)').fill('4');
    await panel.getByRole('button', { name: 'Run check' }).click();
    await page.waitForSelector('[data-testid="comparison-table"]', { timeout: 150_000 });
    const table = panel.locator('[data-testid="comparison-table"]');
    expect(await table.locator('[data-testid="cmp-row-0"] td').first().innerText()).toMatch(/^chosen settings \(rotation full, learned codebook, 10 % at 8 bits, bits overrides\)/);
    expect(await table.locator('[data-testid="cmp-row-1"] td').first().innerText()).toMatch(/^plain RTN \(rotation none\)/);
    const rtnPpl = Number((await table.locator('[data-testid="cmp-row-1"] [data-testid="cmp-ppl"]').innerText()).replace(/[^\d.]/g, ''));
    console.log(`[measured] plain RTN ppl: page ${rtnPpl}, eval CLI ${ref.ppl_quantized}`);
    expect(Math.abs(rtnPpl - ref.ppl_quantized)).toBeLessThanOrEqual(5e-5);
    expect(errors).toEqual([]);
  });

  it.runIf(HAVE_STORIES)('a link with bad values names each one, keeps the good ones, and Run waits until "Use the settings shown"', async () => {
    const base = inject('baseUrl');
    const { page, errors } = await openPage(browser, `${base}?model=tinystories-260k&codebook=learned&w8budget=2&bitsoverride=down_proj%3D5&backend=cpu`);
    const box = page.getByTestId('link-problems');
    expect(await box.locator('li[data-key="w8budget"]').innerText()).toMatch(/^w8budget=2: setting w8-budget: got "2"; expected a fraction/);
    expect(await box.locator('li[data-key="bitsoverride"]').innerText()).toContain('bits "5" must be 4, 8 or 16');
    expect(await page.getByLabel('Codebook', { exact: true }).inputValue()).toBe('learned');
    expect(await page.getByLabel('W8 budget (%)', { exact: true }).inputValue()).toBe('0');
    expect(await page.getByLabel('Bits overrides', { exact: true }).inputValue()).toBe('down_proj=5');
    expect(await page.getByTestId('override-error').innerText()).toContain('bits "5" must be 4, 8 or 16');
    expect(await runButton(page).isDisabled()).toBe(true);
    expect(await page.getByTestId('run-blocked').innerText()).toContain('Use the settings shown');
    await page.getByRole('button', { name: 'Use the settings shown' }).click();
    await expect.poll(() => box.count(), POLL).toBe(0);
    await expect.poll(() => page.getByLabel('Bits overrides', { exact: true }).inputValue(), POLL).toBe('');
    await expect.poll(() => runButton(page).isEnabled(), POLL).toBe(true);
    expect(page.url()).toContain('codebook=learned');
    expect(page.url()).not.toMatch(/w8budget|bitsoverride/);
    expect(errors).toEqual([]);
  });
});
