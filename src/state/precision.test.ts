import { describe, expect, it } from 'vitest';
import { memoryModelSource } from '../../test/support/memory';
import { makeTinyQwen2, tinyQwen2Files } from '../../test/support/tiny-qwen2';
import { preflight } from '../core/pipeline/preflight';
import type { TensorReport } from '../core/pipeline/report';
import { DEFAULT_SETTINGS, type QuantSettings } from '../core/settings';
import { budgetCost, overrideTextError, plannedPrecisionMap, resultPrecisionMap } from './precision';

async function tinyPreflight(s: QuantSettings) {
  const m = makeTinyQwen2({ hidden: 64, intermediate: 96, layers: 2, heads: 4, kvHeads: 2, vocab: 64, tie: true, seed: 3 });
  const files = await tinyQwen2Files(m, { dtype: 'BF16' });
  return preflight(memoryModelSource(Object.fromEntries(files.map((f) => [f.path, f.bytes])), 'tiny'), s);
}

function report(name: string, o: Partial<TensorReport>): TensorReport {
  return { name, kind: 'projection', layer: null, proj: null, shape: [64, 64], quantized: true, transformed: true, absmaxBefore: 1, absmaxAfter: 1, ...o };
}

describe('plannedPrecisionMap', () => {
  it('layers × q…down from the preflight: overrides as planned, the budget "chosen by calibration", L for learned', async () => {
    const s: QuantSettings = { ...DEFAULT_SETTINGS, codebook: 'learned', w8Budget: 0.1, bitsOverride: 'layers.1.mlp.*=8' };
    const pf = await tinyPreflight(s);
    const map = plannedPrecisionMap(pf.tensors, s);
    expect(map.source).toBe('planned');
    expect(map.layers.map((l) => l.layer)).toEqual([0, 1]);
    expect(map.layers[0].cells.map((c) => c!.label)).toEqual(['q', 'k', 'v', 'o', 'gate', 'up', 'down']);
    // Layer 0: all budget candidates (4 or 8), learned; layer 1: attention the same, MLP overridden to 8.
    expect(map.layers[0].cells.map((c) => c!.text)).toEqual(Array(7).fill('4/8L'));
    expect(map.layers[1].cells.map((c) => c!.text)).toEqual(['4/8L', '4/8L', '4/8L', '4/8L', '8L', '8L', '8L']);
    expect(map.layers[1].cells[6]!.overridden).toBe(true);
    expect(map.layers[1].cells[6]!.tooltip).toBe('model.layers.1.mlp.down_proj.weight · 8 bits · learned codebook (256 entries) · 6 K params (64×96) · set by a bits override');
    expect(map.layers[0].cells[0]!.tooltip).toMatch(/^model\.layers\.0\.self_attn\.q_proj\.weight · 4 or 8 bits — chosen by calibration \(W8 budget 10 %/);
    // Embedding (4-bit grid, RTN) and the untied head (16).
    expect(map.extras.map((c) => [c.label, c.text])).toEqual([['embed', '4'], ['head', '16']]);
    expect(map.counts).toEqual({ '4': 1, '8': 3, '16': 1, budget: 11 });
    expect(map.learnedCount).toBe(14);
    expect(map.fraction8).toBeNull();
  });

  it('without a budget (or at 8 bits) every cell has its bits; 16 for what an override leaves unquantized', async () => {
    const s: QuantSettings = { ...DEFAULT_SETTINGS, bits: 8, w8Budget: 0.1, bitsOverride: 'k_proj=4,layers.0.self_attn.v_proj=16', quantizeEmbeddings: false };
    const map = plannedPrecisionMap((await tinyPreflight(s)).tensors, s);
    expect(map.layers.map((l) => l.cells.map((c) => c!.bits))).toEqual([[8, 4, 16, 8, 8, 8, 8], [8, 4, 8, 8, 8, 8, 8]]);
    expect(map.counts).toEqual({ '4': 2, '8': 11, '16': 3, budget: 0 });
    expect(map.layers[0].cells[2]!.tooltip).toContain('unquantized (16-bit)');
  });
});

describe('resultPrecisionMap', () => {
  it('the bits each tensor got, L where the report has fitted entries, the 8-bit share of the projection parameters', () => {
    const reports: TensorReport[] = [
      report('model.embed_tokens.weight', { kind: 'embedding', shape: [64, 64], bits: 4 }),
      report('model.layers.0.input_layernorm.weight', { kind: 'norm', layer: 0, shape: [64], quantized: false }),
      report('model.layers.0.self_attn.q_proj.weight', { layer: 0, proj: 'q_proj', bits: 8, codebook: Array.from({ length: 256 }, (_, i) => i - 128.5) }),
      report('model.layers.0.self_attn.k_proj.weight', { layer: 0, proj: 'k_proj', shape: [32, 64], bits: 4, codebook: [-8, -6, -4, -3, -2, -1, -0.5, 0, 0.5, 1, 2, 3, 4, 5, 6, 7] }),
      report('model.layers.0.mlp.down_proj.weight', { layer: 0, proj: 'down_proj', shape: [64, 96], bits: 4 }),
      report('model.layers.0.mlp.up_proj.weight', { layer: 0, proj: 'up_proj', shape: [96, 64], quantized: false }),
      report('lm_head.weight', { kind: 'lm_head', shape: [64, 64], quantized: false }),
    ];
    const map = resultPrecisionMap(reports, { ...DEFAULT_SETTINGS, codebook: 'learned', w8Budget: 0.1 });
    expect(map.source).toBe('result');
    const row = map.layers[0].cells;
    expect(row.map((c) => c?.text ?? null)).toEqual(['8L', '4L', null, null, null, '16', '4']);
    expect(row[0]!.tooltip).toBe('model.layers.0.self_attn.q_proj.weight · 8 bits · learned codebook (256 entries) · 4 K params (64×64)');
    expect(row[6]!.tooltip).toContain('integer-grid codebook');
    expect(map.extras.map((c) => c.text)).toEqual(['4', '16']);
    expect(map.counts).toEqual({ '4': 3, '8': 1, '16': 2, budget: 0 });
    // 8-bit q (64·64) over the quantized projections q, k (32·64), down (64·96).
    expect(map.fraction8).toBeCloseTo((64 * 64) / (64 * 64 + 32 * 64 + 64 * 96), 12);
  });
});

describe('overrideTextError', () => {
  it('empty or valid: null; otherwise the entry and what is wrong with it', () => {
    expect(overrideTextError('')).toBeNull();
    expect(overrideTextError(' down_proj=8, layers.0.*=16 ')).toBeNull();
    expect(overrideTextError('down_proj=8,o_proj=3')).toBe('--bits-override entry 2 ("o_proj=3"): bits "3" must be 4, 8 or 16 (16 = leave unquantized)');
    expect(overrideTextError('down_proj')).toMatch(/entry 1 \("down_proj"\) has no "=bits"/);
    expect(overrideTextError('a=8,,b=8')).toMatch(/entry 2 \(""\) is empty/);
  });
});

describe('budgetCost', () => {
  it('½ byte per parameter at 8 bits once palettized; 240 more codebook entries per 8-bit projection in the bundle', () => {
    const c = budgetCost({ totalParams: 1_000_000, maxParams8: 100_000 }, 40, DEFAULT_SETTINGS);
    expect(c.palettizedBytes).toBe(50_000);
    expect(c.bundleBytesMax).toBe(40 * 240 * 2);
    expect(c.text).toMatch(/^at most 100 K of 1\.0 M projection parameters at 8 bits: \+50 kB once palettized .* \+19 kB at most .*Needs calibration data/);
    expect(budgetCost({ totalParams: 10, maxParams8: 1 }, 3, { ...DEFAULT_SETTINGS, dtype: 'f32' }).bundleBytesMax).toBe(3 * 240 * 4);
  });
});
