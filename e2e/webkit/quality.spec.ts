/**
 * WebKit: "Check quality" after a W8 run of the TinyStories demo, on its defaults: the app's
 * built-in (offline) evaluation text, compared with plain RTN. The page's figures and comparison
 * table must equal the eval CLI's on the CLI-made bundles (same bytes, same text, same windows),
 * and reach the downloaded zip's README.md, whose manifest.sha256 follows it.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { unzipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliBundle } from '../bundle-compare';
import { clearDownloads, fieldValue, fillField, innerText, openApp, pageErrors, ROOT, screenshot, selectOption, startSession, waitForDownload, waitForStatus } from './browser';
import type { Session } from './webdriver';

const DEMO = path.join(ROOT, 'public/demo/tinystories-260k');
const HAS_DEMO = existsSync(path.join(DEMO, 'model.safetensors')) && existsSync(path.join(DEMO, 'eval.tokens.json'));
const PANEL = 'section[aria-labelledby="quality-h"]';
const IN_PANEL = `//section[@aria-labelledby='quality-h']`;

let s: Session;
const tmp = mkdtempSync(path.join(tmpdir(), 'quarot-webkit-quality-'));
beforeAll(async () => {
  if (HAS_DEMO) s = await startSession();
});
afterAll(async () => {
  await s?.close();
  rmSync(tmp, { recursive: true, force: true });
});

interface CliEval {
  ppl_original: number;
  ppl_quantized: number;
  kl_mean: number;
  top1_agreement: number;
  generation: { original: string; quantized: string };
}

interface CliComparison {
  ppl_original: number;
  bundles: { bundle: string; ppl_quantized: number; kl_mean: number; top1_agreement: number }[];
  best: string;
}

const num = (t: string) => Number(t.replace(/[^\d.eE+-]/g, ''));

describe('WebKit: check quality', () => {
  it('checks the W8 tinystories bundle on the built-in text against plain RTN: figures equal the CLI\'s and land in the zip\'s README', async (ctx) => {
    if (!HAS_DEMO) return ctx.skip('public/demo/tinystories-260k (from ../shared/fixtures/tinystories-260k) is absent, so there is no trained model to check');
    const cliOut = path.join(tmp, 'cli-w8');
    const rtnOut = path.join(tmp, 'cli-w8-rtn');
    cliBundle('tinystories-260k', cliOut, ['--bits', '8']);
    cliBundle('tinystories-260k', rtnOut, ['--bits', '8', '--rotation', 'none']);
    const evalCli = (args: string[]): unknown => JSON.parse(execFileSync(process.execPath, [
      '--import', 'tsx', 'src/cli/eval.ts', '--model', 'public/demo/tinystories-260k', ...args,
      '--builtin-text', '--seqlen', '256', '--windows', '4', '--json',
    ], { cwd: ROOT, encoding: 'utf8' }));
    const ref = evalCli(['--bundle', cliOut, '--prompt', 'Once upon a time', '--gen', '20']) as CliEval;
    const cmp = evalCli(['--bundle', cliOut, '--bundle', rtnOut, '--gen', '0']) as CliComparison;

    await openApp(s, '?model=tinystories-260k&bits=8&autorun=1');
    await waitForStatus(s, 'done');
    // The built-in (offline) text is preselected for a demo, and plain RTN is compared by default.
    expect(await fieldValue(s, 'Evaluation text', IN_PANEL)).toBe('builtin');
    expect(await s.property<boolean>(await s.waitForXPath(`${IN_PANEL}//label[contains(., 'Compare with plain RTN')]//input[@type='checkbox']`), 'checked')).toBe(true);
    expect(await fieldValue(s, 'Prompt', IN_PANEL)).toBe('Once upon a time');
    await selectOption(s, 'Window length (tokens)', '256', IN_PANEL);
    await fillField(s, 'Windows (0 = all)', '4', IN_PANEL);
    expect(await fieldValue(s, 'Windows (0 = all)', IN_PANEL)).toBe('4');
    await s.clickButton('Run check', IN_PANEL);
    await s.waitFor(`[data-testid="quality-result"], ${PANEL} [data-testid="error"]`, 120_000);
    expect(await innerText(s, `${PANEL} [data-testid="error"]`)).toBe('');

    const pplOrig = num(await innerText(s, '[data-testid="ppl-original"] b'));
    const pplQuant = num(await innerText(s, '[data-testid="ppl-quantized"] b'));
    const kl = num(await innerText(s, '[data-testid="kl-mean"] b'));
    const top1 = num(await innerText(s, '[data-testid="top1"] b')) / 100;
    console.log(`WebKit page: ppl original ${pplOrig}, quantized ${pplQuant}, KL ${kl}, top-1 ${top1}; CLI: ${ref.ppl_original}, ${ref.ppl_quantized}, ${ref.kl_mean}, ${ref.top1_agreement}`);
    expect(Math.abs(pplOrig / ref.ppl_original - 1)).toBeLessThan(0.01);
    expect(Math.abs(pplQuant / ref.ppl_quantized - 1)).toBeLessThan(0.01);
    expect(Math.abs(pplQuant / pplOrig - 1)).toBeLessThan(0.01);
    expect(kl).toBeCloseTo(ref.kl_mean, 5);
    expect(top1).toBeCloseTo(ref.top1_agreement, 3);
    expect(await innerText(s, '[data-testid="gen-original"]')).toBe(ref.generation.original);
    expect(await innerText(s, '[data-testid="gen-quantized"]')).toBe(ref.generation.quantized);
    expect(await innerText(s, '[data-testid="quality-device"]')).toMatch(/4 of \d+ windows × 256 tokens .*built-in.* on CPU/is);

    // The comparison table: the same figures as `npm run eval -- --bundle A --bundle B` (4 decimals
    // of perplexity, 4 significant digits of KL, 2 decimals of a percentage are shown).
    expect(Math.abs(num(await innerText(s, '[data-testid="cmp-ppl-original"]')) - cmp.ppl_original)).toBeLessThanOrEqual(5e-5);
    for (let i = 0; i < 2; i++) {
      const row = `[data-testid="comparison-table"] [data-testid="cmp-row-${i}"]`;
      expect(await innerText(s, `${row} td`)).toMatch(i === 0 ? /^chosen settings \(rotation full\)/ : /^plain RTN \(rotation none\)/);
      expect(Math.abs(num(await innerText(s, `${row} [data-testid="cmp-ppl"]`)) - cmp.bundles[i].ppl_quantized)).toBeLessThanOrEqual(5e-5);
      expect(Math.abs(num(await innerText(s, `${row} [data-testid="cmp-kl"]`)) / cmp.bundles[i].kl_mean - 1)).toBeLessThan(1e-3);
      expect(Math.abs(num(await innerText(s, `${row} [data-testid="cmp-top1"]`)) / 100 - cmp.bundles[i].top1_agreement)).toBeLessThanOrEqual(5e-5);
    }
    // The star and the verdict follow the lower KL, as the CLI's "best" does.
    const bestRow = cmp.best === cliOut ? 0 : 1;
    expect(await s.execute<string>('return document.querySelector(arguments[0]).className', `[data-testid="cmp-row-${bestRow}"]`)).toBe('best');
    expect(await innerText(s, '[data-testid="comparison-verdict"]')).toMatch(bestRow === 0 ? /^chosen settings/ : /^plain RTN/);
    // No WebGPU in WebKit's workers: said plainly, and not offered as a device.
    const panelText = await innerText(s, PANEL);
    expect(panelText).toContain('WebGPU is not available in this browser’s workers; ran on the CPU.');
    expect(panelText).not.toContain('choose device "WebGPU"');
    expect(await s.execute('const o = [...document.querySelectorAll(arguments[0] + " option[value=webgpu]")].pop(); return { label: o.textContent, disabled: o.disabled };', PANEL))
      .toEqual({ label: 'WebGPU (not in this browser)', disabled: true });
    expect(await innerText(s, '[data-testid="readme"]')).toContain('## Quality check');
    await screenshot(s, '09-quality', PANEL);

    clearDownloads();
    await s.clickButton('Download bundle');
    const zip = unzipSync(await waitForDownload('tinystories-260k-quarot-w8-sp-mse.zip'));
    const readme = new TextDecoder().decode(zip['README.md']);
    expect(readme).toContain(`| perplexity, original | ${ref.ppl_original.toPrecision(6)} |`);
    // Everything else is still the CLI's bundle, byte for byte; the zip's manifest.sha256 follows the updated card.
    expect(Object.keys(zip).sort()).toEqual(readdirSync(cliOut).sort());
    for (const f of Object.keys(zip).filter((f) => f !== 'README.md' && f !== 'manifest.sha256')) {
      expect(Buffer.compare(Buffer.from(zip[f]), readFileSync(path.join(cliOut, f))), f).toBe(0);
    }
    for (const line of new TextDecoder().decode(zip['manifest.sha256']).trim().split('\n')) {
      const [hex, file] = line.split('  ');
      expect(createHash('sha256').update(zip[file]).digest('hex'), file).toBe(hex);
    }
    expect(await pageErrors(s)).toEqual([]);
  });
});
