import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_DIR, HAS_FIXTURE, fixtureSuite, fixtureJson } from '../../test/support/fixture';
import { loadSafetensorsWeights, makeTinyQwen2, tinyWeights, writeTinyQwen2 } from '../../test/support/tiny-qwen2';
import { createQwen2Cpu, type Qwen2Cpu } from './forward-cpu';
import { greedy } from './perplexity';
import { dimsFromConfig } from '../core/qwen2/config';

interface Reference {
  greedy_from_bos_ids: number[];
  logits_after_bos_top5: [number, number][];
  logits_pos64_top5: [number, number][];
}

function top5(z: Float32Array): [number, number][] {
  return Array.from(z, (v, i) => [i, v] as [number, number])
    .sort((a, b) => b[1] - a[1])
    .slice(0, 5);
}

function expectTop5(z: Float32Array, ref: [number, number][]): void {
  const got = top5(z);
  expect(got.map((e) => e[0])).toEqual(ref.map((e) => e[0]));
  got.forEach(([, v], i) => expect(Math.abs(v - ref[i][1])).toBeLessThan(1e-3));
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe.skipIf(!HAS_FIXTURE)(fixtureSuite('Qwen2 CPU forward on tinystories-260k'), () => {
  let model: Qwen2Cpu;
  let ref: Reference;
  beforeAll(async () => {
    ref = fixtureJson<Reference>('reference.json');
    model = createQwen2Cpu(dimsFromConfig(fixtureJson('config.json')), await loadSafetensorsWeights(FIXTURE_DIR));
  });

  it('logits after BOS: top-5 ids and values match reference.json', async () => {
    const z = await model.logits([1]);
    expect(z.length).toBe(512);
    expectTop5(z, ref.logits_after_bos_top5);
    expect(z[403]).toBeCloseTo(17.02352, 3);
  });

  it('logits at position 64 of the greedy sequence match reference.json', async () => {
    const z = await model.logits(ref.greedy_from_bos_ids.slice(0, 65));
    expect(z.length).toBe(65 * 512);
    expectTop5(z.subarray(64 * 512), ref.logits_pos64_top5);
  });

  it('greedy decoding from BOS reproduces the 100 reference ids', async () => {
    expect(ref.greedy_from_bos_ids.length).toBe(101);
    expect([1, ...await greedy(model, [1], 100)]).toEqual(ref.greedy_from_bos_ids);
  });

  it('KV-cache logits equal full-sequence logits on the real model', async () => {
    const ids = ref.greedy_from_bos_ids.slice(0, 40);
    const full = await model.logits(ids);
    const V = 512;
    let m = maxAbsDiff(await model.prefill(ids.slice(0, 10)), full.subarray(9 * V, 10 * V));
    for (let t = 10; t < ids.length; t++) m = Math.max(m, maxAbsDiff(await model.step(ids[t]), full.subarray(t * V, (t + 1) * V)));
    expect(m).toBeLessThan(1e-4);
    expect(model.position).toBe(40);
  });
});

describe('Qwen2 CPU forward on a generated tiny model', () => {
  const tiny = makeTinyQwen2({ hidden: 64, intermediate: 96, layers: 2, heads: 4, kvHeads: 2, vocab: 101, tie: false, seed: 7 });
  const dims = dimsFromConfig(tiny.config);
  const model = createQwen2Cpu(dims, tinyWeights(tiny));
  const ids = Array.from({ length: 48 }, (_, i) => (i * 37 + 11) % 101);

  it('incremental KV-cache logits equal full-sequence logits within 1e-5', async () => {
    const full = await model.logits(ids);
    const V = 101;
    const diffs: number[] = [maxAbsDiff(await model.prefill(ids.slice(0, 5)), full.subarray(4 * V, 5 * V))];
    for (let t = 5; t < ids.length; t++) diffs.push(maxAbsDiff(await model.step(ids[t]), full.subarray(t * V, (t + 1) * V)));
    expect(Math.max(...diffs)).toBeLessThan(1e-5);
  });

  it('the KV cache survives growing past its initial capacity', async () => {
    const long = Array.from({ length: 150 }, (_, i) => (i * 13 + 5) % 101);
    const full = await model.logits(long);
    const V = 101;
    await model.prefill([long[0]]);
    let m = 0;
    for (let t = 1; t < long.length; t++) m = Math.max(m, maxAbsDiff(await model.step(long[t]), full.subarray(t * V, (t + 1) * V)));
    expect(m).toBeLessThan(1e-5);
  });

  it('is causal: a later token does not change earlier logits', async () => {
    const a = await model.logits(ids.slice(0, 20));
    const b = await model.logits([...ids.slice(0, 19), (ids[19] + 1) % 101]);
    expect(maxAbsDiff(a.subarray(0, 19 * 101), b.subarray(0, 19 * 101))).toBe(0);
    expect(maxAbsDiff(a.subarray(19 * 101), b.subarray(19 * 101))).toBeGreaterThan(1e-3);
  });

  it('gives non-trivial logits (std of a position in 1..10)', async () => {
    const z = (await model.logits(ids.slice(0, 8))).subarray(7 * 101);
    const mean = z.reduce((s, v) => s + v, 0) / z.length;
    const std = Math.sqrt(z.reduce((s, v) => s + (v - mean) ** 2, 0) / z.length);
    expect(std).toBeGreaterThan(1);
    expect(std).toBeLessThan(10);
  });

  it('uses lm_head.weight when present, the embedding when absent (tied)', async () => {
    const w = tinyWeights(tiny);
    const untied = await model.logits([3, 4]);
    w.delete('lm_head.weight');
    const tied = await createQwen2Cpu(dims, w).logits([3, 4]);
    expect(maxAbsDiff(untied, tied)).toBeGreaterThan(0.1);
    // Tied: logits are the final hidden state times the embedding rows, so using the embedding
    // as an explicit lm_head gives identical numbers.
    w.set('lm_head.weight', w.get('model.embed_tokens.weight')!);
    expect(maxAbsDiff(await createQwen2Cpu(dims, w).logits([3, 4]), tied)).toBe(0);
  });

  it('applies optional o/gate/up/down biases, and zero biases change nothing', async () => {
    const w = tinyWeights(tiny);
    const base = await model.logits([5, 6, 7]);
    for (const [n, out] of [
      ['o_proj', 64],
      ['down_proj', 64],
    ] as const) {
      w.set(`model.layers.0.${n === 'o_proj' ? 'self_attn' : 'mlp'}.${n}.bias`, new Float32Array(out));
    }
    w.set('model.layers.1.mlp.gate_proj.bias', new Float32Array(96));
    w.set('model.layers.1.mlp.up_proj.bias', new Float32Array(96));
    expect(maxAbsDiff(await createQwen2Cpu(dims, w).logits([5, 6, 7]), base)).toBe(0);
    w.set('model.layers.1.mlp.up_proj.bias', new Float32Array(96).fill(0.5));
    expect(maxAbsDiff(await createQwen2Cpu(dims, w).logits([5, 6, 7]), base)).toBeGreaterThan(1e-3);
  });

  it('rejects missing tensors and wrong sizes by name', async () => {
    const w = tinyWeights(tiny);
    w.delete('model.layers.1.mlp.up_proj.weight');
    expect(() => createQwen2Cpu(dims, w)).toThrow(/model\.layers\.1\.mlp\.up_proj\.weight/);
    const w2 = tinyWeights(tiny);
    w2.set('model.norm.weight', new Float32Array(3));
    expect(() => createQwen2Cpu(dims, w2)).toThrow(/model\.norm\.weight: 3 elements, expected 64/);
    await expect(model.logits([101])).rejects.toThrow(/out of range/);
  });
});

describe('Qwen2 CPU forward through safetensors files', () => {
  const tiny = makeTinyQwen2({ hidden: 64, intermediate: 96, layers: 2, heads: 4, kvHeads: 2, vocab: 101, tie: true, seed: 3 });
  const dims = dimsFromConfig(tiny.config);
  const ids = [1, 9, 27, 81, 42, 0, 100, 55];
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'eval-fwd-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('F32 shards read back give bit-identical logits; F16/BF16 stay close', async () => {
    const ref = await createQwen2Cpu(dims, tinyWeights(tiny)).logits(ids);
    const results: Record<string, number> = {};
    for (const dtype of ['F32', 'F16', 'BF16'] as const) {
      const sub = path.join(dir, dtype);
      await writeTinyQwen2(sub, tiny, { dtype, shards: dtype === 'F32' ? 3 : 1 });
      const z = await createQwen2Cpu(dims, await loadSafetensorsWeights(sub)).logits(ids);
      results[dtype] = maxAbsDiff(z, ref);
    }
    expect(results.F32).toBe(0);
    expect(results.F16).toBeLessThan(0.02);
    expect(results.BF16).toBeLessThan(0.2);
    expect(results.BF16).toBeGreaterThan(results.F16);
  });
});
