/**
 * Quality check on the real tiny model (SPEC §7): the original's full-eval perplexity against
 * the fixture README, bundles made by the project's pipeline against the original, the
 * perplexity runQualityCheck reports against an independent CPU forward over the same stored
 * tensors, greedy generation, the WebGPU path, and the model-card figures.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { memoryModelSource } from '../support/memory';
import { updateCardQuality, updateManifestLine, qualitySection } from '../../src/eval/card-update';
import { qualityFigures, runQualityCheck, type QualityProgress } from '../../src/eval/check';
import { createQwen2Cpu, type Qwen2Cpu } from '../../src/eval/forward-cpu';
import { createNodeGpuRuntime } from '../../src/gpu/node';
import { evaluate, greedy, type EvalResult } from '../../src/eval/perplexity';
import { dimsFromConfig } from '../../src/core/qwen2/config';
import { loadTokenizer } from '../../src/eval/tokenizer';
import { loadWeights, readFolder, runInMemory, weightSource } from '../support/bundle';
import { FIXTURE_DIR, HAS_FIXTURE, fixtureJson, fixtureSuite, fixtureText } from '../support/fixture';
import { makeTinyQwen2, tinyWeights } from '../support/tiny-qwen2';
import { modelCard } from '../../src/core/bundle/model-card';
import { parseSettings } from '../../src/core/settings';

const SEQ = 256;
const WIN = 40;
const pplOf = (nll: number[]) => Math.exp(nll.reduce((a, b) => a + b, 0) / nll.length);

describe.skipIf(!HAS_FIXTURE)(fixtureSuite('quality check on tinystories-260k'), () => {
  let files: Record<string, Uint8Array>;
  let ids: number[];
  let original: Qwen2Cpu;
  let full: EvalResult;
  const bundles: Record<string, Record<string, Uint8Array>> = {};
  const bundlePpl: Record<string, number> = {};

  beforeAll(async () => {
    files = readFolder(FIXTURE_DIR);
    ids = fixtureJson<{ ids: number[] }>('eval.tokens.json').ids;
    original = createQwen2Cpu(dimsFromConfig(fixtureJson('config.json')), weightSource(await loadWeights(files)));
    // The original's full eval once for the whole file (229 windows ≈ 15 s).
    full = await evaluate(original, undefined, ids, SEQ);
    for (const [name, s] of Object.entries({ b16: { bits: 16 }, w8: { bits: 8 }, w4: {} })) {
      bundles[name] = (await runInMemory(files, s, { model: 'tinystories-260k' })).files;
    }
  });

  const ppl40 = () => pplOf(full.windowNllA.slice(0, WIN));

  it('original, all 229 windows: 3.5885 (fixture README) within 0.1 %', async () => {
    expect(full.windows).toBe(229);
    expect(Math.abs(full.pplA / 3.5885 - 1)).toBeLessThan(1e-3);
  });

  it.each([
    ['b16', 0.005],
    ['w8', 0.01],
    ['w4', 0.2],
  ])('bundle %s (pipeline defaults otherwise): perplexity within %d of the original (first 40 windows)', async (name, tol) => {
    const w = await loadWeights(bundles[name]);
    // The stored weights and biases as they are (SP: y = weight·x + bias); scale keys unused.
    const cfg = JSON.parse(new TextDecoder().decode(bundles[name]['config.json']));
    const m = createQwen2Cpu(dimsFromConfig(cfg), weightSource(w));
    const r = await evaluate(m, undefined, ids, SEQ, WIN);
    bundlePpl[name] = r.pplA;
    console.log(`${name}: ppl ${r.pplA.toFixed(4)} vs original ${ppl40().toFixed(4)}`);
    expect(Math.abs(r.pplA / ppl40() - 1)).toBeLessThan(tol);
  });

  it('runQualityCheck (W4, CPU, 40 windows) equals independent computations within 0.1 %', async () => {
    const stages = new Set<string>();
    const r = await runQualityCheck({
      original: memoryModelSource(files, 'original'),
      bundle: memoryModelSource(bundles.w4, 'w4'),
      tokens: ids,
      seqlen: SEQ,
      windows: WIN,
      onProgress: (p: QualityProgress) => stages.add(p.stage),
    });
    expect(r.device).toBe('cpu');
    expect(r.windows).toBe(WIN);
    expect(r.predictions).toBe(WIN * 255);
    expect(r.windowsAvailable).toBe(229);
    expect(Math.abs(r.pplOriginal / ppl40() - 1)).toBeLessThan(1e-3);
    expect(bundlePpl.w4).toBeDefined();
    expect(Math.abs(r.pplQuantized / bundlePpl.w4 - 1)).toBeLessThan(1e-3);
    expect(r.klMean).toBeGreaterThan(0.005);
    expect(r.klMean).toBeLessThan(0.5);
    expect(r.top1Agreement).toBeGreaterThan(0.6);
    expect(r.top1Agreement).toBeLessThan(1);
    expect([...stages]).toEqual(['open', 'load-original', 'load-bundle', 'evaluate']);
    console.log(`W4 defaults: ppl ${r.pplOriginal.toFixed(4)} → ${r.pplQuantized.toFixed(4)}, KL ${r.klMean.toFixed(4)}, top-1 ${r.top1Agreement.toFixed(4)}`);

    const f = qualityFigures(r);
    expect(f['perplexity, original']).toBe(r.pplOriginal);
    expect(f['perplexity, quantized']).toBe(r.pplQuantized);
    expect(f['top-1 agreement']).toBe(r.top1Agreement);
    expect(f['evaluation text']).toContain('40 windows × 256 tokens (10200 predictions)');
  });

  it('W8: greedy generation from "Once upon a time" equals the original for 20 tokens (text input, KV cache)', async () => {
    const tok = loadTokenizer(fixtureText('tokenizer.json'), fixtureText('tokenizer_config.json'));
    const text = fixtureText('eval.txt').slice(0, 4000);
    const r = await runQualityCheck({
      original: memoryModelSource(files),
      bundle: memoryModelSource(bundles.w8),
      text,
      seqlen: 128,
      windows: 2,
      prompt: 'Once upon a time',
      genTokens: 20,
    });
    const g = r.generation!;
    expect(g.originalIds.length).toBe(20);
    expect(g.quantizedIds).toEqual(g.originalIds);
    const pIds = tok.encode('Once upon a time');
    expect(g.originalIds).toEqual(await greedy(original, pIds, 20, [2, 1]));
    expect(g.original.startsWith('Once upon a time, there was')).toBe(true);
    expect(g.quantized).toBe(g.original);
    expect(r.tokenCount).toBe(tok.encode(text).length);
    expect(qualityFigures(r)['greedy tokens equal to the original']).toBe('20 of 20');
  });

  it('WebGPU: the same figures as the CPU (2 windows), reported device and adapter', async () => {
    const gpu = await createNodeGpuRuntime();
    try {
      const opts = { original: memoryModelSource(files), bundle: memoryModelSource(bundles.w4), tokens: ids, seqlen: SEQ, windows: 2, prompt: 'Once upon a time', genTokens: 8 };
      const g = await runQualityCheck({ ...opts, device: 'webgpu', gpu });
      const c = await runQualityCheck({ ...opts, device: 'cpu' });
      expect(g.device).toBe('webgpu');
      expect(g.adapter).toMatch(/Dawn/);
      expect(Math.abs(g.pplOriginal / c.pplOriginal - 1)).toBeLessThan(1e-4);
      expect(Math.abs(g.pplQuantized / c.pplQuantized - 1)).toBeLessThan(1e-4);
      expect(Math.abs(g.klMean - c.klMean)).toBeLessThan(1e-4 + 1e-3 * c.klMean);
      expect(Math.abs(g.top1Agreement - c.top1Agreement)).toBeLessThanOrEqual(2 / c.predictions);
      expect(g.generation!.originalIds).toEqual(c.generation!.originalIds);
    } finally {
      gpu.destroy();
    }
  });
});

describe('runQualityCheck on random tiny models', () => {
  const make = (seed: number) => {
    const m = makeTinyQwen2({ hidden: 32, intermediate: 48, layers: 2, heads: 4, kvHeads: 2, vocab: 60, tie: true, seed: 7 });
    const files: Record<string, Uint8Array> = { 'config.json': new TextEncoder().encode(JSON.stringify(m.config)) };
    return { m, files, seed };
  };

  it('a model against itself: KL 0, agreement 1, equal perplexities; bad input is an InputError', async () => {
    const { m } = make(7);
    const { writeTinyQwen2 } = await import('../support/tiny-qwen2');
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'qc-'));
    try {
      await writeTinyQwen2(dir, m, { dtype: 'F32' });
      const src = memoryModelSource(readFolder(dir));
      const ids = Array.from({ length: 100 }, (_, i) => (i * 7) % 60);
      const r = await runQualityCheck({ original: src, bundle: src, tokens: ids, seqlen: 16, windows: 3 });
      expect(r.klMean).toBe(0);
      expect(r.top1Agreement).toBe(1);
      expect(r.pplQuantized).toBe(r.pplOriginal);
      const cpu = createQwen2Cpu(dimsFromConfig(m.config), tinyWeights(m));
      expect(r.pplOriginal).toBeCloseTo((await evaluate(cpu, undefined, ids, 16, 3)).pplA, 10);
      await expect(runQualityCheck({ original: src, bundle: src, tokens: [1, 2, 99], seqlen: 2 })).rejects.toThrow(/outside the vocabulary/);
      await expect(runQualityCheck({ original: src, bundle: src, tokens: ids, seqlen: 200 })).rejects.toThrow(/fewer than one window/);
      await expect(runQualityCheck({ original: src, bundle: src, text: 'hello', seqlen: 16 })).rejects.toThrow(/tokenizer/);
      const ctl = new AbortController();
      ctl.abort();
      await expect(runQualityCheck({ original: src, bundle: src, tokens: ids, seqlen: 16, signal: ctl.signal })).rejects.toThrow(/cancelled/);
      const other = makeTinyQwen2({ hidden: 32, intermediate: 64, layers: 2, heads: 4, kvHeads: 2, vocab: 60, tie: true, seed: 7 });
      const dir2 = join(dir, 'other');
      await writeTinyQwen2(dir2, other, { dtype: 'F32' });
      await expect(runQualityCheck({ original: src, bundle: memoryModelSource(readFolder(dir2)), tokens: ids, seqlen: 16 })).rejects.toThrow(/intermediate 64 vs 48/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('model card update', () => {
  const figures = { 'perplexity, original': 3.57, 'perplexity, quantized': 4.1234567, 'evaluation text': 'x: 2 windows × 256 tokens (510 predictions)' };

  it('inserts the section where model-card.ts puts it, replaces it on a re-run', async () => {
    const input = {
      target: { model: 'm' },
      modelArg: 'm',
      settings: parseSettings({}),
      reports: [],
      quantizedCount: 0,
      rotated: true,
      residualHadamard: null,
    };
    const plain = modelCard(input);
    const withQ = modelCard({ ...input, quality: figures });
    expect(updateCardQuality(plain, figures)).toBe(withQ);
    const again = updateCardQuality(withQ, { ...figures, 'perplexity, quantized': 5 });
    expect(again.match(/## Quality check/g)!.length).toBe(1);
    expect(again).toContain('| perplexity, quantized | 5.00000 |');
    expect(again).toContain('## Reproduce');
    expect(updateCardQuality('', figures)).toBe(qualitySection(figures));
  });

  it('manifest: the README line is recomputed (or added, sorted)', async () => {
    const a = '0'.repeat(64);
    const b = 'f'.repeat(64);
    const m = `${a}  README.md\n${a}  config.json\n`;
    expect(updateManifestLine(m, 'README.md', b)).toBe(`${b}  README.md\n${a}  config.json\n`);
    expect(updateManifestLine(`${a}  config.json\n`, 'README.md', b)).toBe(`${b}  README.md\n${a}  config.json\n`);
  });
});
