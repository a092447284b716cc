import { describe, expect, it } from 'vitest';
import { memoryModelSource } from '../../../test/support/memory';
import { makeTinyQwen2, tinyQwen2Files } from '../../../test/support/tiny-qwen2';
import { DEFAULT_SETTINGS, type QuantSettings } from '../settings';
import { assertRunnable, preflight } from './preflight';

async function model(opts: Partial<Parameters<typeof makeTinyQwen2>[0]> = {}) {
  const m = makeTinyQwen2({ hidden: 64, intermediate: 96, layers: 2, heads: 4, kvHeads: 2, vocab: 64, tie: true, seed: 3, ...opts });
  const files = await tinyQwen2Files(m, { dtype: 'BF16' });
  return memoryModelSource(Object.fromEntries(files.map((f) => [f.path, f.bytes])), 'tiny');
}

const s = (o: Partial<QuantSettings> = {}): QuantSettings => ({ ...DEFAULT_SETTINGS, ...o });

describe('preflight', () => {
  it('counts tensors, parameters and bytes from the headers alone', async () => {
    const src = await model();
    const pf = await preflight(src, s());
    // 2 layers × (q,k,v,o,gate,up,down) + embeddings (tied: no separate head in the checkpoint).
    expect(pf.quantizedCount).toBe(2 * 7 + 1);
    expect(pf.config).toMatchObject({ hidden: 64, layers: 2, heads: 4, kvHeads: 2, headDim: 16, vocab: 64, tied: true });
    expect(pf.dtypes).toEqual(['BF16']);
    const params = 64 * 64 + 2 * (64 * 64 + 2 * 32 * 64 + 32 + 32 + 64 + 64 * 64 + 3 * 96 * 64 + 2 * 64) + 64;
    expect(pf.parameters).toBe(params);
    expect(pf.tensorBytes).toBe(2 * params);
    expect(pf.largestTensor).toBe(96 * 64); // gate/up/down
    expect(pf.hadamard).toBe('H64 (Sylvester)');
    expect(pf.blocking).toBeNull();
    expect(pf.blockSizes).toEqual([2, 4, 8, 16, 32, 64]);
    // Only the safetensors header (and the small JSON files) were read: never tensor data.
    const reads = src.opened.get('model.safetensors')!.reads;
    expect(reads.reduce((n, [, len]) => n + len, 0)).toBeLessThan(4096);
    // The bundle keeps f16 weights on the 4-bit grid (as BF16 in: same size) plus per-row scales.
    expect(pf.outputBytes).toBeGreaterThanOrEqual(pf.tensorBytes);
    expect(pf.outputBytes).toBeLessThan(1.25 * pf.tensorBytes);
  });

  it('reports a rotation the model refuses as blocking, with settings that work', async () => {
    const src = await model({ hidden: 92, heads: 23, kvHeads: 1 }); // 92 = 23·4: no H_92 construction
    const pf = await preflight(src, s());
    expect(pf.blocking).toMatch(/no Hadamard construction of order n = 92/);
    expect(pf.blockSizes).toEqual([2, 4]);
    expect(pf.suggestions.map((x) => x.settings)).toEqual([{ rotation: 'block', blockSize: 4 }, { rotation: 'none' }]);
    expect(() => assertRunnable(pf)).toThrow(/n = 92.*\(or use rotation "none"/);
    // The suggestion runs.
    const fixed = await preflight(src, s(pf.suggestions[0].settings));
    expect(fixed.blocking).toBeNull();
    expect(fixed.hadamard).toBe('H4 (Sylvester)');
  });

  it('a block size that does not divide the hidden size is blocking; the suggestion is the largest valid one', async () => {
    const src = await model({ hidden: 48, heads: 4, kvHeads: 2 });
    const pf = await preflight(src, s({ rotation: 'block', blockSize: 32 }));
    expect(pf.blocking).toMatch(/block size 32 does not divide hidden_size 48/);
    expect(pf.suggestions[0].settings).toEqual({ rotation: 'block', blockSize: 16 });
    expect(pf.blockSizes).toEqual([2, 4, 8, 16]);
  });

  it('throws for a model that cannot be read at all', async () => {
    const src = memoryModelSource({ 'model.safetensors': new Uint8Array(16) }, 'broken');
    await expect(preflight(src, s())).rejects.toThrow(/no config\.json in broken/);
  });

  it('lists every matrix with its planned bits: overrides applied and marked, the budget left to calibration', async () => {
    const src = await model();
    const pf = await preflight(src, s({ codebook: 'learned', w8Budget: 0.1, bitsOverride: 'layers.0.*=8,down_proj=16' }));
    expect(pf.blocking).toBeNull();
    expect(pf.overrideError).toBeNull();
    // 2 layers × 7 projections, the embedding, and the head (written untied: rotated/quantized embedding).
    expect(pf.tensors).toHaveLength(16);
    const byName = new Map(pf.tensors.map((t) => [t.name, t]));
    expect(byName.get('model.layers.0.self_attn.q_proj.weight')).toEqual({
      name: 'model.layers.0.self_attn.q_proj.weight', kind: 'projection', layer: 0, proj: 'q_proj', rows: 64, cols: 64, bits: 8, codebook: 'learned', overridden: true, budgetCandidate: false,
    });
    // Last match wins: layer 0's down_proj is unquantized.
    expect(byName.get('model.layers.0.mlp.down_proj.weight')).toMatchObject({ bits: 16, codebook: null, overridden: true });
    expect(byName.get('model.layers.1.mlp.up_proj.weight')).toMatchObject({ bits: 4, codebook: 'learned', overridden: false, budgetCandidate: true });
    expect(byName.get('model.embed_tokens.weight')).toMatchObject({ kind: 'embedding', bits: 4, codebook: null, budgetCandidate: false });
    expect(byName.get('lm_head.weight')).toMatchObject({ kind: 'lm_head', bits: 16, codebook: null });
    // The budget's base: layer 1's q,k,v,o,gate,up (its down is unquantized): 64² + 2·32·64 + 64² + 2·96·64.
    const total = 64 * 64 + 2 * 32 * 64 + 64 * 64 + 2 * 96 * 64;
    expect(pf.budget).toEqual({ totalParams: total, maxParams8: Math.floor(0.1 * total) });
    expect(pf.quantizedCount).toBe(2 * 7 + 1 - 2);
  });

  it('an override pattern that matches nothing is named in overrideError and blocks the run; the rest still reads', async () => {
    const src = await model();
    const pf = await preflight(src, s({ bitsOverride: 'dwn_proj=8' }));
    expect(pf.overrideError).toMatch(/^--bits-override: "dwn_proj" matches no quantized tensor of this model \(names look like model\.layers\.0\./);
    expect(pf.blocking).toBe(pf.overrideError);
    expect(pf.tensors.filter((t) => t.bits === 4)).toHaveLength(15);
    expect(pf.budget).toBeNull();
    expect(() => assertRunnable(pf)).toThrow(/"dwn_proj" matches no quantized tensor/);
  });
});
