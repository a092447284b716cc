/**
 * Comparing bundles by measurement: compareBundles scores every bundle on the same windows (the
 * original's perplexity is the same for all), its figures equal single-bundle checks, the verdict
 * follows KL/perplexity, and `npm run eval -- --bundle A --bundle B` prints the same numbers.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUILTIN_TEXT } from '../../src/eval/builtin-text';
import { runQualityCheck } from '../../src/eval/check';
import { compareBundles, pairedDifference, summarize } from '../../src/eval/compare-bundles';
import { readFolder, runInMemory } from '../support/bundle';
import { FIXTURE_DIR, HAS_FIXTURE, fixtureSuite } from '../support/fixture';
import { memoryModelSource } from '../support/memory';

const ROOT = resolve(__dirname, '../..');

describe('pairedDifference', () => {
  it('is the mean and standard error of the per-window differences', () => {
    const d = pairedDifference([1, 2, 3, 4], [1.5, 2.5, 3.7, 4.3]);
    expect(d.mean).toBeCloseTo(0.5, 12);
    // differences 0.5, 0.5, 0.7, 0.3: sample sd = 0.16330, se = sd / 2
    expect(d.se).toBeCloseTo(0.0816497, 6);
    expect(pairedDifference([1], [2]).se).toBe(Infinity);
  });
});

describe.skipIf(!HAS_FIXTURE)(fixtureSuite('bundle comparison on tinystories-260k'), () => {
  const tmp = mkdtempSync(join(tmpdir(), 'quarot-compare-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const original = () => memoryModelSource(readFolder(FIXTURE_DIR), 'tinystories-260k');
  let w8: Record<string, Uint8Array>;
  let w4: Record<string, Uint8Array>;

  beforeAll(async () => {
    w8 = (await runInMemory(readFolder(FIXTURE_DIR), { bits: 8 }, { model: 'tinystories-260k' })).files;
    w4 = (await runInMemory(readFolder(FIXTURE_DIR), { bits: 4, rotation: 'none', clip: 'absmax', scheme: 'per_tensor' }, { model: 'tinystories-260k' })).files;
    for (const [name, files] of [['w8', w8], ['w4', w4]] as const) {
      mkdirSync(join(tmp, name), { recursive: true });
      for (const [p, d] of Object.entries(files)) writeFileSync(join(tmp, name, p), d);
    }
  });

  it('scores each bundle on the same windows; figures equal single checks; 8-bit beats crude 4-bit clearly', async () => {
    const opts = { original: original(), text: BUILTIN_TEXT, seqlen: 128, windows: 12 };
    const cmp = await compareBundles({ ...opts, bundles: [{ label: 'w4 per-tensor absmax', source: memoryModelSource(w4) }, { label: 'w8', source: memoryModelSource(w8) }] });
    const single = await runQualityCheck({ ...opts, original: original(), bundle: memoryModelSource(w8) });
    console.log(`[measured] built-in text, 12×128: ppl original ${cmp.pplOriginal.toFixed(4)}; ${cmp.bundles.map((b) => `${b.label} ppl ${b.pplQuantized.toFixed(4)} KL ${b.klMean.toExponential(3)}`).join('; ')}`);
    expect(cmp.windows).toBe(12);
    expect(cmp.predictions).toBe(12 * 127);
    expect(cmp.bundles[0].result.pplOriginal).toBe(cmp.bundles[1].result.pplOriginal);
    expect(cmp.bundles[1].pplQuantized).toBe(single.pplQuantized);
    expect(cmp.bundles[1].klMean).toBe(single.klMean);
    expect(cmp.bundles[1].top1Agreement).toBe(single.top1Agreement);
    expect(cmp.best).toBe(1);
    expect(cmp.clear).toEqual([true, true]);
    expect(cmp.bundles[0].klMean).toBeGreaterThan(10 * cmp.bundles[1].klMean);
    expect(cmp.verdict).toMatch(/^w8 vs w4 per-tensor absmax: mean KL .* — w8 is better by measurement\.$/);
  });

  it('says when perplexity and KL disagree, and refuses bundles scored on different windows', () => {
    const base = { pplOriginal: 10, windows: 2, seqlen: 8, tokenCount: 16, windowNllQuantized: [2.4, 2.5] };
    const mk = (label: string, ppl: number, kl: number) => ({
      label, pplQuantized: ppl, pplChangePct: (ppl / 10 - 1) * 100, klMean: kl, top1Agreement: 0.9,
      result: { ...base, pplQuantized: ppl, klMean: kl } as unknown as Parameters<typeof summarize>[0][0]['result'],
    });
    expect(summarize([mk('A', 11, 0.01), mk('B', 10.5, 0.02)]).verdict).toMatch(/KL favours A, perplexity favours B: no clear winner/);
    const other = mk('C', 11, 0.02);
    other.result = { ...other.result, windows: 3 };
    expect(() => summarize([mk('A', 11, 0.01), other])).toThrow(/C was scored on different windows than A/);
  });

  it('npm run eval -- --bundle A --bundle B --builtin-text: the same numbers as the in-process comparison', async () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/eval.ts'), '--model', FIXTURE_DIR, '--bundle', join(tmp, 'w8'), '--bundle', join(tmp, 'w4'), '--builtin-text', '--seqlen', '128', '--windows', '6', '--json'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    const cmp = await compareBundles({ original: original(), text: BUILTIN_TEXT, seqlen: 128, windows: 6, bundles: [{ label: 'a', source: memoryModelSource(w8) }, { label: 'b', source: memoryModelSource(w4) }] });
    expect(out.ppl_original).toBe(cmp.pplOriginal);
    expect(out.bundles.map((b: { ppl_quantized: number }) => b.ppl_quantized)).toEqual(cmp.bundles.map((b) => b.pplQuantized));
    expect(out.bundles.map((b: { kl_mean: number }) => b.kl_mean)).toEqual(cmp.bundles.map((b) => b.klMean));
    expect(out.best).toBe(join(tmp, 'w8'));
    const text = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/eval.ts'), '--model', FIXTURE_DIR, '--bundle', join(tmp, 'w8'), '--bundle', join(tmp, 'w4'), '--builtin-text', '--seqlen', '128', '--windows', '6'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    expect(text.stdout).toMatch(/\(original\)\s+\d+\.\d{4}/);
    expect(text.stdout).toContain(`* ${join(tmp, 'w8')}`);
    expect(text.stdout).toMatch(/is better by measurement\./);
  });
});
