import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { roundToF16 } from '../src/core/safetensors/dtype';
import { createQwen2Cpu } from '../src/eval/forward-cpu';
import { dimsFromConfig } from '../src/core/qwen2/config';
import { encodeBF16, gaussian, loadSafetensorsWeights, makeTinyQwen2, mulberry32, tinyWeights, writeTinyQwen2 } from './support/tiny-qwen2';

const base = { hidden: 64, intermediate: 96, layers: 2, heads: 4, kvHeads: 2, vocab: 100, tie: false, seed: 1 };

/** Fraction of the non-outlier columns' weights that W4 per-tensor absmax RTN rounds to 0. */
function zeroFraction(w: Float32Array, cols: number, skipCols: number[]): number {
  let max = 0;
  for (const v of w) max = Math.max(max, Math.abs(v));
  const step = max / 7;
  let zeros = 0;
  let n = 0;
  for (let i = 0; i < w.length; i++) {
    if (skipCols.includes(i % cols)) continue;
    n++;
    if (Math.round(w[i] / step) === 0) zeros++;
  }
  return zeros / n;
}

describe('PRNG', () => {
  it('mulberry32 is deterministic and uniform-looking; Box–Muller gives N(0,1)', async () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const xs = Array.from({ length: 5 }, () => a());
    expect(Array.from({ length: 5 }, () => b())).toEqual(xs);
    expect(mulberry32(43)()).not.toBe(xs[0]);
    const g = gaussian(mulberry32(5));
    let s = 0;
    let s2 = 0;
    const n = 20000;
    for (let i = 0; i < n; i++) {
      const x = g();
      s += x;
      s2 += x * x;
    }
    expect(Math.abs(s / n)).toBeLessThan(0.03);
    expect(Math.abs(s2 / n - 1)).toBeLessThan(0.05);
  });
});

describe('makeTinyQwen2', () => {
  it('has the Qwen2 names and shapes (SPEC §2), nonzero q/k/v biases, and an HF config', async () => {
    const m = makeTinyQwen2(base);
    expect(m.tensors.size).toBe(1 + 2 * 12 + 2);
    const shape = (n: string) => m.tensors.get(n)?.shape;
    expect(shape('model.embed_tokens.weight')).toEqual([100, 64]);
    expect(shape('lm_head.weight')).toEqual([100, 64]);
    expect(shape('model.norm.weight')).toEqual([64]);
    expect(shape('model.layers.1.self_attn.q_proj.weight')).toEqual([64, 64]);
    expect(shape('model.layers.1.self_attn.k_proj.weight')).toEqual([32, 64]);
    expect(shape('model.layers.1.self_attn.v_proj.bias')).toEqual([32]);
    expect(shape('model.layers.1.self_attn.o_proj.weight')).toEqual([64, 64]);
    expect(shape('model.layers.1.mlp.gate_proj.weight')).toEqual([96, 64]);
    expect(shape('model.layers.1.mlp.down_proj.weight')).toEqual([64, 96]);
    expect(m.tensors.has('model.layers.0.self_attn.o_proj.bias')).toBe(false);
    for (const [name, t] of m.tensors) {
      expect(t.data.length).toBe(t.shape.reduce((a, b) => a * b, 1));
      if (name.endsWith('.bias')) expect(t.data.some((v) => Math.abs(v) > 0.1)).toBe(true);
    }
    expect(m.config).toMatchObject({
      model_type: 'qwen2',
      architectures: ['Qwen2ForCausalLM'],
      torch_dtype: 'float32',
      hidden_size: 64,
      num_key_value_heads: 2,
      tie_word_embeddings: false,
      rms_norm_eps: 1e-6,
      rope_theta: 10000,
    });
    const tied = makeTinyQwen2({ ...base, tie: true, ropeTheta: 1e6, eps: 1e-5 });
    expect(tied.tensors.has('lm_head.weight')).toBe(false);
    expect(tied.config).toMatchObject({ tie_word_embeddings: true, rope_theta: 1e6, rms_norm_eps: 1e-5 });
  });

  it('is deterministic in the seed', async () => {
    const a = makeTinyQwen2(base).tensors.get('model.layers.0.mlp.up_proj.weight')!.data;
    expect(makeTinyQwen2(base).tensors.get('model.layers.0.mlp.up_proj.weight')!.data).toEqual(a);
    expect(makeTinyQwen2({ ...base, seed: 2 }).tensors.get('model.layers.0.mlp.up_proj.weight')!.data).not.toEqual(a);
  });

  it('outliers: 3 channels with gains 8–20 and ×5–10 columns that wreck per-tensor W4 RTN', async () => {
    const plain = makeTinyQwen2(base);
    const m = makeTinyQwen2({ ...base, outliers: true });
    expect(plain.outlierChannels).toEqual([]);
    expect(m.outlierChannels.length).toBe(3);
    for (const norm of ['input_layernorm', 'post_attention_layernorm']) {
      const g = m.tensors.get(`model.layers.1.${norm}.weight`)!.data;
      g.forEach((v, i) => {
        if (m.outlierChannels.includes(i)) {
          expect(v).toBeGreaterThanOrEqual(8);
          expect(v).toBeLessThanOrEqual(20);
        } else {
          expect(Math.abs(v - 1)).toBeLessThanOrEqual(0.2 + 1e-6);
        }
      });
    }
    const colRms = (w: Float32Array, c: number) => {
      let s = 0;
      for (let r = 0; r < w.length / 64; r++) s += w[r * 64 + c] ** 2;
      return Math.sqrt(s / (w.length / 64));
    };
    const q = m.tensors.get('model.layers.0.self_attn.q_proj.weight')!.data;
    const normal = [0, 1, 2, 3, 4, 5].filter((c) => !m.outlierChannels.includes(c)).slice(0, 3);
    const ratio = colRms(q, m.outlierChannels[0]) / (normal.reduce((s, c) => s + colRms(q, c), 0) / 3);
    expect(ratio).toBeGreaterThan(3.5);
    expect(ratio).toBeLessThan(14);
    const qPlain = plain.tensors.get('model.layers.0.self_attn.q_proj.weight')!.data;
    const zPlain = zeroFraction(qPlain, 64, []);
    const zOut = zeroFraction(q, 64, m.outlierChannels);
    expect(zPlain).toBeLessThan(0.25);
    expect(zOut).toBeGreaterThan(0.5);
  });

  it('outlier models still give finite, non-trivial logits', async () => {
    const m = makeTinyQwen2({ ...base, outliers: true, seed: 4 });
    const z = await createQwen2Cpu(dimsFromConfig(m.config), tinyWeights(m)).logits([1, 2, 3, 4, 5, 6]);
    expect(z.every(Number.isFinite)).toBe(true);
    const last = z.subarray(5 * 100);
    const mean = last.reduce((s, v) => s + v, 0) / 100;
    const std = Math.sqrt(last.reduce((s, v) => s + (v - mean) ** 2, 0) / 100);
    expect(std).toBeGreaterThan(0.5);
    expect(std).toBeLessThan(50);
  });
});

describe('encodeBF16', () => {
  it('rounds the upper 16 bits to nearest even', async () => {
    const bytes = encodeBF16(Float32Array.from([1, -2, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20, Infinity, NaN, 3.4e38]));
    const u16 = Array.from({ length: bytes.length / 2 }, (_, i) => bytes[2 * i] | (bytes[2 * i + 1] << 8));
    // 1+2^-8 is a tie → even (1.0); 1+3·2^-8 tie → up to 1+2^-6; just above a tie → up.
    expect(u16).toEqual([0x3f80, 0xc000, 0x3f80, 0x3f82, 0x3f81, 0x7f80, 0x7fc0, 0x7f80]);
  });
});

describe('writeTinyQwen2 / loadSafetensorsWeights', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'tiny-qwen2-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const m = makeTinyQwen2({ ...base, tie: true, seed: 9 });

  it('one F32 file round-trips exactly, with config and generation config', async () => {
    const dir = path.join(root, 'f32');
    const files = await writeTinyQwen2(dir, m, { dtype: 'F32' });
    expect(files).toEqual(['model.safetensors', 'config.json', 'generation_config.json']);
    expect(readdirSync(dir).sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors']);
    const w = await loadSafetensorsWeights(dir);
    expect(w.size).toBe(m.tensors.size);
    for (const [name, t] of m.tensors) expect(w.get(name)).toEqual(t.data);
    const cfg = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
    expect(cfg).toMatchObject({ model_type: 'qwen2', torch_dtype: 'float32', tie_word_embeddings: true });
    expect(JSON.parse(readFileSync(path.join(dir, 'generation_config.json'), 'utf8'))).toEqual({ bos_token_id: 1, eos_token_id: 2 });
    // Sorted by name, like the fixture and HF's serializer.
    const buf = readFileSync(path.join(dir, 'model.safetensors'));
    const header = JSON.parse(buf.subarray(8, 8 + Number(buf.readBigUInt64LE(0))).toString());
    const names = Object.keys(header).filter((k) => k !== '__metadata__');
    expect(names).toEqual([...names].sort());
    expect(header.__metadata__).toEqual({ format: 'pt' });
  });

  it('writes exactly N shards with an HF index; F16/BF16 values are the rounded originals', async () => {
    const dir = path.join(root, 'bf16');
    const files = await writeTinyQwen2(dir, m, { dtype: 'BF16', shards: 3 });
    expect(files.slice(0, 4)).toEqual([
      'model-00001-of-00003.safetensors',
      'model-00002-of-00003.safetensors',
      'model-00003-of-00003.safetensors',
      'model.safetensors.index.json',
    ]);
    const index = JSON.parse(readFileSync(path.join(dir, 'model.safetensors.index.json'), 'utf8'));
    expect(Object.keys(index.weight_map).length).toBe(m.tensors.size);
    expect(JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')).torch_dtype).toBe('bfloat16');
    const w = await loadSafetensorsWeights(dir);
    const src = m.tensors.get('model.layers.1.mlp.down_proj.weight')!.data;
    const got = w.get('model.layers.1.mlp.down_proj.weight')!;
    let maxRel = 0;
    for (let i = 0; i < src.length; i++) maxRel = Math.max(maxRel, Math.abs(got[i] - src[i]) / Math.abs(src[i]));
    // BF16 keeps 8 significant bits: relative rounding error ≤ 2^-8.
    expect(maxRel).toBeLessThanOrEqual(2 ** -8);
    expect(maxRel).toBeGreaterThan(2 ** -10);

    const f16 = path.join(root, 'f16');
    await writeTinyQwen2(f16, m, { dtype: 'F16', shards: 2 });
    expect(readdirSync(f16).filter((f) => f.endsWith('.safetensors')).length).toBe(2);
    const w16 = await loadSafetensorsWeights(f16);
    const g16 = w16.get('model.layers.1.mlp.down_proj.weight')!;
    expect(g16).toEqual(src.map(roundToF16));
  });
});
