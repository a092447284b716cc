/**
 * "Check quality" (SPEC §7) on the real TinyStories demo: run W8, check the bundle against the
 * original on the demo's evaluation text, and compare the page's figures with the eval CLI's on
 * the CLI-made bundle (same bytes, same windows). The figures must reach the downloaded zip's
 * README.md (and its manifest.sha256 line), with the zip's other files unchanged.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { unzipSync } from 'fflate';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { launch, openPage, ROOT, screenshot, waitForStatus } from './browser';
import { cliBundle } from './bundle-compare';

const DEMO = path.join(ROOT, 'public/demo/tinystories-260k');
const HAS_DEMO = existsSync(path.join(DEMO, 'model.safetensors')) && existsSync(path.join(DEMO, 'eval.tokens.json'));

let browser: Browser;
const tmp = mkdtempSync(path.join(tmpdir(), 'quarot-e2e-quality-'));
beforeAll(async () => {
  if (HAS_DEMO) browser = await launch();
});
afterAll(async () => {
  await browser?.close();
  rmSync(tmp, { recursive: true, force: true });
});

interface CliEval {
  ppl_original: number;
  ppl_quantized: number;
  kl_mean: number;
  top1_agreement: number;
  windows: number;
  generation: { original: string; quantized: string };
}

const num = (s: string) => Number(s.replace(/[^\d.eE+-]/g, ''));

describe('check quality', () => {
  it('checks the W8 tinystories bundle: figures on the page equal the CLI\'s and land in the zip\'s README', async (ctx) => {
    if (!HAS_DEMO) return ctx.skip('public/demo/tinystories-260k (from ../shared/fixtures/tinystories-260k) is absent, so there is no trained model to check');

    // Reference: the CLI's bundle for the same settings, evaluated by the eval CLI on the same windows.
    const cliOut = path.join(tmp, 'cli-w8');
    cliBundle('tinystories-260k', cliOut, ['--bits', '8']);
    const ref = JSON.parse(execFileSync(process.execPath, [
      '--import', 'tsx', 'src/cli/eval.ts', '--model', 'public/demo/tinystories-260k', '--bundle', cliOut,
      '--tokens', path.join(DEMO, 'eval.tokens.json'), '--seqlen', '256', '--windows', '4', '--json',
      '--prompt', 'Once upon a time', '--gen', '20',
    ], { cwd: ROOT, encoding: 'utf8' })) as CliEval;

    const { page, errors } = await openPage(browser, `${inject('baseUrl')}?model=tinystories-260k&bits=8&backend=cpu`);
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await waitForStatus(page, 'done');

    const panel = page.locator('section[aria-labelledby="quality-h"]');
    // The built-in (offline) text is preselected for a demo; the demo's own text is one choice away.
    await expect(panel.getByLabel('Evaluation text').inputValue()).resolves.toBe('builtin');
    await panel.getByLabel('Evaluation text').selectOption('demo');
    await panel.getByLabel('Window length (tokens)').selectOption('256');
    await panel.getByLabel('Windows (0 = all)').fill('4');
    await expect(panel.getByLabel('Prompt').inputValue()).resolves.toBe('Once upon a time');
    await panel.getByRole('button', { name: 'Run check' }).click();
    await page.waitForSelector('[data-testid="quality-result"]', { timeout: 120_000 });

    const pplOrig = num(await panel.locator('[data-testid="ppl-original"] b').innerText());
    const pplQuant = num(await panel.locator('[data-testid="ppl-quantized"] b').innerText());
    const kl = num(await panel.locator('[data-testid="kl-mean"] b').innerText());
    const top1 = num(await panel.locator('[data-testid="top1"] b').innerText()) / 100;
    console.log(`page: ppl original ${pplOrig}, quantized ${pplQuant}, KL ${kl}, top-1 ${top1}; CLI: ${ref.ppl_original}, ${ref.ppl_quantized}, ${ref.kl_mean}, ${ref.top1_agreement}`);
    expect(Math.abs(pplOrig / ref.ppl_original - 1)).toBeLessThan(0.01);
    expect(Math.abs(pplQuant / pplOrig - 1)).toBeLessThan(0.01);
    expect(Math.abs(pplQuant / ref.ppl_quantized - 1)).toBeLessThan(0.01);
    expect(kl).toBeCloseTo(ref.kl_mean, 5);
    expect(top1).toBeCloseTo(ref.top1_agreement, 3);
    expect(await panel.locator('[data-testid="gen-original"]').innerText()).toBe(ref.generation.original);
    expect(await panel.locator('[data-testid="gen-quantized"]').innerText()).toBe(ref.generation.quantized);
    expect(await panel.locator('[data-testid="quality-device"]').innerText()).toMatch(/4 of \d+ windows × 256 tokens .* on CPU/);

    // The model card preview and the downloaded zip carry the figures.
    expect(await page.locator('[data-testid="readme"]').innerText()).toContain('## Quality check');
    await panel.scrollIntoViewIfNeeded();
    await screenshot(page, '09-quality', { selector: 'section[aria-labelledby="quality-h"]' });

    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download bundle' }).click()]);
    const zipPath = path.join(tmp, 'app.zip');
    await download.saveAs(zipPath);
    const zip = unzipSync(new Uint8Array(readFileSync(zipPath)));
    const readme = new TextDecoder().decode(zip['README.md']);
    expect(readme).toContain('## Quality check');
    expect(readme).toContain(`| perplexity, original | ${ref.ppl_original.toPrecision(6)} |`);
    expect(readme.indexOf('## Quality check')).toBeLessThan(readme.indexOf('## Reproduce'));
    // Everything else is still the CLI's bundle, byte for byte.
    expect(Object.keys(zip).sort()).toEqual(readdirSync(cliOut).sort());
    for (const f of Object.keys(zip).filter((f) => f !== 'README.md' && f !== 'manifest.sha256')) {
      expect(Buffer.compare(Buffer.from(zip[f]), readFileSync(path.join(cliOut, f))), f).toBe(0);
    }
    // The zip's manifest.sha256 follows the updated card.
    for (const line of new TextDecoder().decode(zip['manifest.sha256']).trim().split('\n')) {
      const [hex, file] = line.split('  ');
      expect(createHash('sha256').update(zip[file]).digest('hex'), file).toBe(hex);
    }
    expect(errors).toEqual([]);
  });

  it('checks a dropped bundle against its dropped original on a dropped text file, on the worker\'s WebGPU adapter', async (ctx) => {
    if (!HAS_DEMO) return ctx.skip('public/demo/tinystories-260k (from ../shared/fixtures/tinystories-260k) is absent, so there is no trained model to check');
    const cliOut = path.join(tmp, 'cli-w4');
    cliBundle('tinystories-260k', cliOut);
    const textFile = path.join(DEMO, 'eval.txt');
    const ref = JSON.parse(execFileSync(process.execPath, [
      '--import', 'tsx', 'src/cli/eval.ts', '--model', 'public/demo/tinystories-260k', '--bundle', cliOut,
      '--text', textFile, '--seqlen', '128', '--windows', '2', '--json', '--prompt', 'Once upon a time', '--gen', '8',
    ], { cwd: ROOT, encoding: 'utf8' })) as CliEval;

    // No run on this page: the panel offers only the dropped pair.
    const { page, errors } = await openPage(browser, `${inject('baseUrl')}?backend=cpu`);
    const panel = page.locator('section[aria-labelledby="quality-h"]');
    const modelFiles = ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];
    await panel.locator('[data-testid="quality-drop-original"] input[type=file][multiple]').setInputFiles(modelFiles.map((f) => path.join(DEMO, f)));
    await panel.locator('[data-testid="quality-drop-bundle"] input[type=file][multiple]').setInputFiles(readdirSync(cliOut).map((f) => path.join(cliOut, f)));
    await panel.locator('input[type=file][accept]').setInputFiles(textFile);
    await expect(panel.getByLabel('Evaluation text').inputValue()).resolves.toBe('file');
    await panel.getByLabel('Window length (tokens)').selectOption('128');
    await panel.getByLabel('Windows (0 = all)').fill('2');
    await panel.getByLabel('Generated tokens').fill('8');
    await panel.getByLabel('Check device').selectOption('webgpu');
    await panel.getByRole('button', { name: 'Run check' }).click();
    await page.waitForSelector('[data-testid="quality-result"], section[aria-labelledby="quality-h"] [data-testid="error"]', { timeout: 150_000 });
    expect(await panel.locator('[data-testid="error"]').count()).toBe(0);

    const device = await panel.locator('[data-testid="quality-device"]').innerText();
    console.log(`dropped pair: ${device}`);
    expect(device).toMatch(/on WebGPU/);
    const pplOrig = num(await panel.locator('[data-testid="ppl-original"] b').innerText());
    const pplQuant = num(await panel.locator('[data-testid="ppl-quantized"] b').innerText());
    console.log(`dropped pair (WebGPU): ppl original ${pplOrig}, quantized ${pplQuant}; CLI (CPU): ${ref.ppl_original}, ${ref.ppl_quantized}`);
    expect(Math.abs(pplOrig / ref.ppl_original - 1)).toBeLessThan(1e-3);
    expect(Math.abs(pplQuant / ref.ppl_quantized - 1)).toBeLessThan(1e-3);
    // The dropped bundle is not written to: its updated card is shown and offered.
    expect(await panel.locator('[data-testid="quality-readme"]').innerText()).toContain('## Quality check');
    await panel.getByRole('button', { name: 'Download manifest.sha256' }).waitFor();
    expect(errors).toEqual([]);
  });

  it('updates a bundle kept in browser storage (OPFS): README.md and its manifest.sha256 line', async (ctx) => {
    if (!HAS_DEMO) return ctx.skip('public/demo/tinystories-260k (from ../shared/fixtures/tinystories-260k) is absent, so there is no trained model to check');
    const { page, errors } = await openPage(browser, `${inject('baseUrl')}?model=tinystories-260k&backend=cpu&bits=8&clip=absmax`);
    await page.getByLabel('Destination').selectOption('opfs');
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await waitForStatus(page, 'done');
    const panel = page.locator('section[aria-labelledby="quality-h"]');
    await panel.getByLabel('Windows (0 = all)').fill('1');
    await panel.getByLabel('Generated tokens').fill('4');
    await panel.getByRole('button', { name: 'Run check' }).click();
    await page.waitForSelector('[data-testid="quality-result"]', { timeout: 120_000 });
    expect(await panel.innerText()).toContain('manifest.sha256 matches it');
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download bundle' }).click()]);
    const zipPath = path.join(tmp, 'opfs.zip');
    await download.saveAs(zipPath);
    const zip = unzipSync(new Uint8Array(readFileSync(zipPath)));
    expect(new TextDecoder().decode(zip['README.md'])).toContain('## Quality check');
    const manifest = new TextDecoder().decode(zip['manifest.sha256']);
    for (const line of manifest.trim().split('\n')) {
      const [hex, file] = line.split('  ');
      expect(createHash('sha256').update(zip[file]).digest('hex'), file).toBe(hex);
    }
    expect(errors).toEqual([]);
  });
});
