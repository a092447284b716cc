// The ANEMLL SP format check (FORMAT.md) every quantized bundle must pass.
import { expect } from 'vitest';
import { PROJECTIONS } from '../../src/core/qwen2/plan';
import { roundToF16 } from '../../src/core/safetensors/dtype';
import { openSafetensorsModel } from '../../src/core/safetensors/model';
import { readTensorF32 } from '../../src/core/safetensors/read-tensor';
import { memoryModelSource } from './memory';
import { checkCodebookTensor } from './codebook-format';

/** The codebook entry nearest to x (the first of two equally near). */
export function nearest(codebook: ArrayLike<number>, x: number): number {
  let best = codebook[0];
  for (let i = 1; i < codebook.length; i++) if (Math.abs(codebook[i] - x) < Math.abs(best - x)) best = codebook[i];
  return best;
}

/**
 * Checks a bundle against FORMAT.md the way ANEMLL's SP loader reads it: every key with its shape
 * and dtype, no other keys; per projection `weight / fp16(s_in·s_out)` on the integer grid (at most
 * 2^b values in [−qmax−1, qmax]) and the loader's fp16 de-fuse snapping each weight to that same
 * codebook entry; zero biases on o/gate/up/down; norms ones; a quantized embedding on a grid.
 */
export async function checkSpBundle(
  files: Record<string, Uint8Array>,
  o: { bits: 4 | 8; layers?: number; quantizeEmbeddings?: boolean; learned?: boolean },
): Promise<{ bitsSeen: Set<number> }> {
  const runBits = o.bits;
  const bitsSeen = new Set<number>();
  const cfg = JSON.parse(new TextDecoder().decode(files['config.json'])) as { num_hidden_layers: number };
  const layers = o.layers ?? cfg.num_hidden_layers;
  const quantizeEmbeddings = o.quantizeEmbeddings ?? true;
  const model = await openSafetensorsModel(memoryModelSource(files));
  const names = new Set(model.tensors.keys());
  const expected = new Set<string>(['model.embed_tokens.weight', 'model.norm.weight', 'lm_head.weight']);
  for (let l = 0; l < layers; l++) {
    expected.add(`model.layers.${l}.input_layernorm.weight`).add(`model.layers.${l}.post_attention_layernorm.weight`);
    for (const p of PROJECTIONS) {
      const pre = `model.layers.${l}.${p.endsWith('proj') && ['gate_proj', 'up_proj', 'down_proj'].includes(p) ? 'mlp' : 'self_attn'}.${p}`;
      for (const k of ['weight', 'bias', 'input_scales', 'output_scales', 'codebook']) expected.add(`${pre}.${k}`);
    }
  }
  expect([...names].sort()).toEqual([...expected].sort());
  let gridChecked = 0;
  for (const [name, t] of model.tensors) {
    expect(t.info.dtype, name).toBe('F16');
    if (!name.endsWith('.weight') || !name.includes('_proj')) continue;
    const pre = name.slice(0, -'.weight'.length);
    const get = async (n: string) => {
      const x = model.tensors.get(n)!;
      return { shape: x.info.shape, data: await readTensorF32(model.files.get(x.file)!.source, x.info) };
    };
    const w = await get(name);
    const [rows, cols] = w.shape;
    const si = await get(`${pre}.input_scales`);
    const so = await get(`${pre}.output_scales`);
    const cb = await get(`${pre}.codebook`);
    const b = await get(`${pre}.bias`);
    expect(si.shape).toEqual([1, cols]);
    expect(so.shape).toEqual([rows, 1]);
    expect(b.shape).toEqual([rows]);
    // Mixed precision: each projection's own width is its codebook's length.
    const bits = Math.log2(cb.shape[0]);
    expect([4, 8], name).toContain(bits);
    bitsSeen.add(bits);
    const qmax = 2 ** (bits - 1) - 1;
    if (o.learned) {
      const c = checkCodebookTensor(w.data, si.data, so.data, cb.data, rows, cols);
      expect({ problem: c.codebookProblem, off: c.offCodebook, misSnapped: c.misSnapped }, `${name} ${c.firstBad}`).toEqual({ problem: null, off: 0, misSnapped: 0 });
      expect(c.distinct).toBeGreaterThan(2 ** bits / 2);
      gridChecked++;
      continue;
    }
    expect(Array.from(cb.data)).toEqual(Array.from({ length: 2 ** bits }, (_, i) => i - qmax - 1));
    if (!/[qkv]_proj$/.test(pre)) expect(b.data.every((v) => v === 0)).toBe(true);
    // The loader's W_q = weight / fp16(s_in · s_out) must land on the grid, and ANEMLL's fp16
    // de-fuse (W_q = fp16(weight / fp16(s_in·s_out)), then the nearest codebook entry) must snap
    // every weight to that same entry. Counted, then asserted once (an expect per weight is slow).
    const distinct = new Set<number>();
    let offGrid = 0;
    let outOfRange = 0;
    let misSnapped = 0;
    let firstBad = '';
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const v = w.data[r * cols + c];
        const q = v / Math.fround(si.data[c] * so.data[r]);
        const rq = Math.round(q) + 0; // +0: the grid has no −0
        const bad = [Math.abs(q - rq) > 2 ** -9 * Math.max(1, Math.abs(q)), rq < -qmax - 1 || rq > qmax];
        const snapped = nearest(cb.data, roundToF16(v / roundToF16(si.data[c] * so.data[r]))) + 0;
        if (bad[0]) offGrid++;
        if (bad[1]) outOfRange++;
        if (snapped !== rq) misSnapped++;
        if (!firstBad && (bad[0] || bad[1] || snapped !== rq)) firstBad = `[${r}, ${c}]: weight ${v}, ÷ scales ${q}, snapped ${snapped}`;
        distinct.add(rq);
      }
    }
    expect({ offGrid, outOfRange, misSnapped }, `${name} ${firstBad}`).toEqual({ offGrid: 0, outOfRange: 0, misSnapped: 0 });
    expect(distinct.size).toBeLessThanOrEqual(2 ** bits);
    expect(distinct.size).toBeGreaterThan(2 ** bits / 2); // a real spread of codes, not a degenerate tensor
    gridChecked++;
  }
  expect(gridChecked).toBe(7 * layers);
  // Norms are ones after fusion.
  const norm = model.tensors.get('model.norm.weight')!;
  expect(Array.from(await readTensorF32(model.files.get(norm.file)!.source, norm.info)).every((v) => v === 1)).toBe(true);
  // Quantized embedding: one shared integer grid per row (sp) → ≤ 2^b distinct values per row.
  if (quantizeEmbeddings) {
    const bits = runBits;
    const e = model.tensors.get('model.embed_tokens.weight')!;
    const data = await readTensorF32(model.files.get(e.file)!.source, e.info);
    const cols = e.info.shape[1];
    const row0 = new Set(Array.from(data.subarray(0, cols)));
    expect(row0.size).toBeLessThanOrEqual(2 ** bits);
  }
  return { bitsSeen };
}
