/**
 * The settings advisor in the app: on the tinystories-260k demo with its built-in calibration,
 * a 4-point grid (RTN / GPTQ × uniform codebook × W8 0 / 10 %) fills the table row by row with
 * numeric perplexity and size — the same figures `quantize --sweep` gives for that grid on the
 * demo folder — and "Apply" puts a row's method, codebook and W8 budget into the settings shown.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { launch, openPage, ROOT, screenshot } from './browser';

let browser: Browser;
const tmp = mkdtempSync(path.join(tmpdir(), 'quarot-e2e-advisor-'));

beforeAll(async () => {
  browser = await launch();
});
afterAll(async () => {
  await browser?.close();
  rmSync(tmp, { recursive: true, force: true });
});

const HAVE_STORIES = existsSync(path.join(ROOT, 'public/demo/tinystories-260k/model.safetensors'));

describe('settings advisor in the app', () => {
  it.runIf(HAVE_STORIES)('a 4-point grid on the demo: rows with numeric perplexity and size equal to the CLI sweep; Apply sets the settings', { timeout: 300_000 }, async () => {
    const base = inject('baseUrl');
    const { page, errors } = await openPage(browser, `${base}?model=tinystories-260k&method=gptq&calib=demo&csamples=8&cseqlen=128&cseed=0&backend=cpu`);
    const panel = page.locator('[data-testid="advisor"]');
    await panel.getByLabel('try the learned codebook').uncheck();
    await panel.getByLabel('try W8 5 %').uncheck();
    await panel.getByRole('button', { name: 'Try 4 settings' }).click();
    await page.waitForSelector('[data-testid="advisor"][data-advisor-status="running"]');
    await page.waitForSelector('[data-testid="advisor"][data-advisor-status="done"]', { timeout: 170_000 });
    expect(await panel.locator('.error').count()).toBe(0);

    const rows = panel.locator('[data-testid="advisor-row"]');
    expect(await rows.count()).toBe(4);
    const col = async (c: string) => (await panel.locator(`[data-testid="advisor-row"] td[data-col="${c}"]`).allInnerTexts()).map((t) => t.trim());
    expect(await col('method')).toEqual(['rtn', 'rtn', 'gptq', 'gptq']);
    expect(await col('codebook')).toEqual(['uniform', 'uniform', 'uniform', 'uniform']);
    expect(await col('w8')).toEqual(['0', '10', '0', '10']);
    const ppl = (await col('ppl')).map(Number);
    const sizes = (await panel.locator('[data-testid="advisor-row"] td[data-col="size"]').evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-bytes')))));
    for (const p of ppl) expect(Number.isFinite(p) && p > 1).toBe(true);
    for (const b of sizes) expect(Number.isInteger(b) && b > 0).toBe(true);
    expect(sizes[1]).toBeGreaterThan(sizes[0]); // the W8 row keeps projections at 8 bits
    const summary = await panel.locator('[data-testid="advisor-summary"]').innerText();
    expect(summary).toMatch(/Original model: perplexity [\d.]+ on 8 windows × 256 tokens \(2040 predictions\)/);
    await screenshot(page, '14-advisor', { selector: '[data-testid="advisor"]' });

    // The CLI on the demo folder, same grid, calibration and (default, built-in) evaluation text.
    const json = path.join(tmp, 'sweep.json');
    execFileSync(process.execPath, [
      '--import', 'tsx', 'src/cli/quantize.ts', '--model', 'public/demo/tinystories-260k', '--sweep', 'method=rtn,gptq;codebook=uniform;w8=0,10',
      '--calib', 'demo', '--calib-samples', '8', '--calib-seqlen', '128', '--calib-seed', '0', '--sweep-json', json, '--quiet',
    ], { cwd: ROOT, encoding: 'utf8' });
    const cli = JSON.parse(readFileSync(json, 'utf8')) as { ppl_original: number; best: number; points: { ppl: number; bytes: number }[] };
    expect(sizes).toEqual(cli.points.map((p) => p.bytes));
    expect(ppl).toEqual(cli.points.map((p) => Number(p.ppl.toFixed(4))));
    expect(summary).toContain(`perplexity ${cli.ppl_original.toFixed(4)}`);
    expect(await panel.locator('[data-testid="advisor-row"][data-best="true"] td[data-col="ppl"]').innerText()).toBe(cli.points[cli.best].ppl.toFixed(4));

    // Apply: a row's settings become the settings shown (and the link's).
    const method = page.locator('[data-testid="method-settings"] select').first();
    await panel.getByRole('button', { name: 'apply row 2' }).click();
    expect(await method.inputValue()).toBe('rtn');
    expect(await panel.locator('[data-testid="advisor-current"]').innerText()).toBe('Current settings: RTN, uniform codebook, W8 10 %');
    await expect.poll(() => new URL(page.url()).searchParams.get('method')).toBe('rtn');
    await panel.getByRole('button', { name: 'apply row 3' }).click();
    expect(await method.inputValue()).toBe('gptq');
    expect(await panel.locator('[data-testid="advisor-current"]').innerText()).toBe('Current settings: GPTQ, uniform codebook, W8 0 %');
    expect(await rows.nth(2).getAttribute('data-applied')).toBe('true');
    expect(errors).toEqual([]);
  });
});
