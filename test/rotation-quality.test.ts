/**
 * Rotation earns its keep on LLM-like weights (outlier channels): mean KL to the original model
 * drops with full rotation versus plain RTN (rotation none). Also determinism of the bytes.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createQwen2Cpu } from '../src/eval/forward-cpu';
import { dimsFromConfig } from '../src/core/qwen2/config';
import { evaluate } from '../src/eval/perplexity';
import { makeTinyQwen2, tinyWeights } from './support/tiny-qwen2';
import { loadWeights, runInMemory, tinyModelFiles, weightSource } from './support/bundle';

async function outlierModel(seed: number) {
  const opts = { hidden: 128, intermediate: 256, layers: 2, heads: 4, kvHeads: 2, vocab: 256, tie: true, seed, outliers: true };
  const m = makeTinyQwen2(opts);
  return { files: await tinyModelFiles(opts), model: createQwen2Cpu(dimsFromConfig(m.config), weightSource(tinyWeights(m))), vocab: 256 };
}

const sha = (files: Record<string, Uint8Array>): string => {
  const h = createHash('sha256');
  for (const k of Object.keys(files).sort()) h.update(k).update(files[k]);
  return h.digest('hex');
};

describe('rotation vs plain RTN on a model with outlier channels', () => {
  it.each([
    [8, 'per_tensor', 'absmax'],
    [4, 'sp', 'mse'],
  ] as const)('W%i %s/%s: full rotation lowers mean KL to the original', async (bits, scheme, clip) => {
    const { files, model, vocab } = await outlierModel(11);
    const ids = Array.from({ length: 4 * 64 }, (_, i) => (i * 7919 + 13) % vocab);
    const kl: Record<string, number> = {};
    for (const rotation of ['none', 'full'] as const) {
      const out = await runInMemory(files, { bits, scheme, clip, rotation });
      const cfg = JSON.parse(new TextDecoder().decode(out.files['config.json']));
      const q = createQwen2Cpu(dimsFromConfig(cfg), weightSource(await loadWeights(out.files)));
      kl[rotation] = (await evaluate(model, q, ids, 64)).klMean!;
      // The per-tensor report agrees: mean relative weight error with rotation vs plain RTN.
    }
    console.log(`W${bits} ${scheme}/${clip}: mean KL plain ${kl.none.toFixed(4)} → full ${kl.full.toFixed(4)}`);
    expect(kl.full).toBeLessThan(kl.none * 0.7);
  });
});

describe('determinism', () => {
  it('same seed → byte-identical bundle; different seed → different bytes', async () => {
    const { files } = await outlierModel(5);
    const a = await runInMemory(files, { seed: 0 });
    const b = await runInMemory(files, { seed: 0 });
    const c = await runInMemory(files, { seed: 1 });
    expect(sha(a.files)).toBe(sha(b.files));
    expect(sha(c.files)).not.toBe(sha(a.files));
    expect(Object.keys(a.files).sort()).toEqual(Object.keys(c.files).sort());
    // Only the rotated tensors change with the seed, not the layout.
    expect(a.files['model.safetensors'].length).toBe(c.files['model.safetensors'].length);
  });
});
