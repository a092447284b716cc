/**
 * SPEC §3: with quantization off the transformed model computes the original's logits.
 * F32 export is the exact test (< 1e-5 relative RMS, identical argmax at every position);
 * F16 export only adds storage rounding (< 3e-3).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createQwen2Cpu } from '../src/eval/forward-cpu';
import { dimsFromConfig } from '../src/core/qwen2/config';
import { argmax } from '../src/eval/perplexity';
import { makeTinyQwen2, writeTinyQwen2, type TinyQwen2Options } from './support/tiny-qwen2';
import { loadWeights, readFolder, relRms, runInMemory, weightSource } from './support/bundle';
import type { Dtype } from '../src/core/safetensors/types';

const tmp = mkdtempSync(join(tmpdir(), 'quarot-fp-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function argmaxRows(logits: Float32Array, V: number): number[] {
  return Array.from({ length: logits.length / V }, (_, t) => argmax(logits.subarray(t * V, (t + 1) * V)));
}

interface Case { label: string; model: TinyQwen2Options; dtype: Dtype; shards: number }
const cases: Case[] = [
  // hidden 48 = 12·4 (Paley K = 12), head dim 12 = 12·1, intermediate 100 (not a power of two), F32, 1 file
  { label: 'd=48 (K=12) F32', model: { hidden: 48, intermediate: 100, layers: 2, heads: 4, kvHeads: 2, vocab: 97, tie: true, seed: 1 }, dtype: 'F32', shards: 1 },
  // hidden 112 = 28·4 (Paley II K = 28), head dim 16, BF16, 3 shards, untied head, outliers
  { label: 'd=112 (K=28) BF16 sharded', model: { hidden: 112, intermediate: 136, layers: 2, heads: 7, kvHeads: 1, vocab: 120, tie: false, seed: 2, outliers: true }, dtype: 'BF16', shards: 3 },
  // hidden 64 = 2^6, F16, 2 shards, tied, GQA 8/4
  { label: 'd=64 F16 sharded', model: { hidden: 64, intermediate: 172, layers: 3, heads: 8, kvHeads: 4, vocab: 128, tie: true, seed: 3 }, dtype: 'F16', shards: 2 },
];

describe.each(cases)('$label', ({ label, model, dtype, shards }) => {
  const dir = join(tmp, label.replace(/\W+/g, '_'));
  const ids = Array.from({ length: 24 }, (_, i) => (i * 37 + 5) % model.vocab);
  const setup = (async () => {
    const m = makeTinyQwen2(model);
    await writeTinyQwen2(dir, m, { dtype, shards });
    const src = readFolder(dir);
    const cfg = JSON.parse(new TextDecoder().decode(src['config.json']));
    const ref = await createQwen2Cpu(dimsFromConfig(cfg), weightSource(await loadWeights(src))).logits(ids);
    return { src, ref, V: model.vocab };
  })();

  it.each([
    ['none', 16],
    ['block', 16],
    ['full', 64],
  ] as const)('bits 16, rotation %s (block %i): F32 logits equal the original, F16 within storage rounding', async (rotation, blockSize) => {
    const { src, ref, V } = await setup;
    for (const out of ['f32', 'f16'] as const) {
      const { files } = await runInMemory(src, { bits: 16, dtype: out, rotation, blockSize });
      const cfg = JSON.parse(new TextDecoder().decode(files['config.json']));
      const got = await createQwen2Cpu(dimsFromConfig(cfg), weightSource(await loadWeights(files))).logits(ids);
      const err = relRms(ref, got);
      console.log(`${label}, rotation ${rotation}, ${out}: logits relative RMS ${err.toExponential(2)}`);
      if (out === 'f32') {
        expect(err).toBeLessThan(1e-5);
        expect(argmaxRows(got, V)).toEqual(argmaxRows(ref, V));
      } else {
        expect(err).toBeLessThan(3e-3);
      }
      if (rotation !== 'none') {
        // It really was transformed: the stored q_proj differs from the source's.
        const orig = await loadWeights(src);
        const w = await loadWeights(files);
        expect(relRms(orig.get('model.layers.0.self_attn.q_proj.weight')!, w.get('model.layers.0.self_attn.q_proj.weight')!)).toBeGreaterThan(0.1);
        expect(cfg.tie_word_embeddings).toBe(false);
        expect(w.has('lm_head.weight')).toBe(true);
      }
    }
  });
});
