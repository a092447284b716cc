/**
 * The layer-by-layer interface of the CPU forward (the oracle GPTQ will run on): embed →
 * runLayer × L → head is the whole model; each hook sees exactly the input of its linears (checked
 * against an independent re-computation of the layer from the hooks and the raw weights); a
 * substituted weight changes that layer and nothing before it; and the sequential GPTQ loop
 * (collect inputs, substitute, run) equals a model built with the substituted weights.
 */
import { describe, expect, it } from 'vitest';
import { makeTinyQwen2, tinyWeights } from '../../test/support/tiny-qwen2';
import { dimsFromConfig } from '../core/qwen2/config';
import { ropeTables } from '../core/qwen2/rope';
import { LINEAR_INPUTS, PROJECTIONS, PROJECTIONS_BY_INPUT, layerNormName, linearInputWidth, projectionName, projectionShape, type LinearInput, type ProjName } from '../core/qwen2/tensors';
import type { LinearHooks } from './forward';
import { createQwen2Cpu, type CpuActivation } from './forward-cpu';
import { maxRelError } from './perplexity';

const tiny = makeTinyQwen2({ hidden: 64, intermediate: 96, layers: 3, heads: 4, kvHeads: 2, vocab: 101, tie: false, seed: 11, outliers: true });
const dims = dimsFromConfig(tiny.config);
const W = tinyWeights(tiny);
const model = createQwen2Cpu(dims, W);
const ids = Array.from({ length: 23 }, (_, i) => (i * 41 + 3) % 101);
const { hidden: d, heads: H, kvHeads: KV, headDim: D } = dims;

/** y = x·Wᵀ + b, f64, written out here rather than taken from the pass. */
function project(x: Float32Array, rows: number, w: Float32Array, b: Float32Array | undefined, out: number): Float64Array {
  const n = w.length / out;
  const y = new Float64Array(rows * out);
  for (let t = 0; t < rows; t++) for (let o = 0; o < out; o++) {
    let a = b ? b[o] : 0;
    for (let i = 0; i < n; i++) a += x[t * n + i] * w[o * n + i];
    y[t * out + o] = a;
  }
  return y;
}

function rms(x: ArrayLike<number>, rows: number, gamma: Float32Array): Float64Array {
  const out = new Float64Array(rows * d);
  for (let t = 0; t < rows; t++) {
    let ss = 0;
    for (let i = 0; i < d; i++) ss += x[t * d + i] ** 2;
    const inv = 1 / Math.sqrt(ss / d + dims.rmsNormEps);
    for (let i = 0; i < d; i++) out[t * d + i] = x[t * d + i] * inv * gamma[i];
  }
  return out;
}

/** Causal GQA attention of rows 0…T−1 from attn_in, with RoPE from core/qwen2/rope. */
function attention(li: number, xin: Float32Array, T: number): Float64Array {
  const wb = (p: ProjName) => [W.get(projectionName(li, p))!, W.get(projectionName(li, p, 'bias'))] as const;
  const q = project(xin, T, ...wb('q_proj'), H * D);
  const k = project(xin, T, ...wb('k_proj'), KV * D);
  const v = project(xin, T, ...wb('v_proj'), KV * D);
  const { cos, sin } = ropeTables(D, dims.ropeTheta, T);
  const half = D / 2;
  const rope = (x: Float64Array, heads: number) => {
    for (let t = 0; t < T; t++) for (let h = 0; h < heads; h++) for (let i = 0; i < half; i++) {
      const o = (t * heads + h) * D;
      const [a, b] = [x[o + i], x[o + i + half]];
      x[o + i] = a * cos[t * half + i] - b * sin[t * half + i];
      x[o + i + half] = b * cos[t * half + i] + a * sin[t * half + i];
    }
  };
  rope(q, H);
  rope(k, KV);
  const out = new Float64Array(T * H * D);
  for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) {
    const kv = Math.floor(h / (H / KV));
    const s = Array.from({ length: t + 1 }, (_, u) => {
      let a = 0;
      for (let i = 0; i < D; i++) a += q[(t * H + h) * D + i] * k[(u * KV + kv) * D + i];
      return a / Math.sqrt(D);
    });
    const m = Math.max(...s);
    const e = s.map((x) => Math.exp(x - m));
    const z = e.reduce((a, b) => a + b, 0);
    for (let i = 0; i < D; i++) out[(t * H + h) * D + i] = e.reduce((a, p, u) => a + p * v[(u * KV + kv) * D + i], 0) / z;
  }
  return out;
}

function collectHooks(seen: Map<string, Float32Array>): LinearHooks<CpuActivation> {
  const hooks: LinearHooks<CpuActivation> = {};
  for (const input of LINEAR_INPUTS) hooks[input] = async (a, at) => void seen.set(`${at.layer}.${at.input}`, await a.read());
  return hooks;
}

describe('CPU forward, layer by layer', () => {
  it('embed → runLayer × L → head equals logits(ids) exactly; head options match', async () => {
    let h = await model.embed(ids);
    expect([h.rows, h.cols]).toEqual([ids.length, d]);
    for (let li = 0; li < dims.layers; li++) h = await model.runLayer(li, h);
    const z = await model.head(h);
    expect(maxRelError(z, await model.logits(ids))).toBe(0);
    const last = await model.head(h, { lastOnly: true });
    expect(maxRelError(last, z.subarray((ids.length - 1) * 101))).toBe(0);
    const lp = await model.head(h, { logSoftmax: true });
    let s = 0;
    for (let i = 0; i < 101; i++) s += Math.exp(lp[i]);
    expect(Math.abs(s - 1)).toBeLessThan(1e-5);
    await expect(model.runLayer(dims.layers, h)).rejects.toThrow(/layer 3 outside \[0, 3\)/);
  });

  it('each hook sees its linears\' input: the layer recomputed from the hooks and the raw weights gives its output', async () => {
    let h = await model.embed(ids);
    const T = ids.length;
    for (let li = 0; li < dims.layers; li++) {
      const seen = new Map<string, Float32Array>();
      const out = await model.runLayer(li, h, { hooks: collectHooks(seen) });
      const at = (input: LinearInput) => {
        const x = seen.get(`${li}.${input}`)!;
        expect(x.length).toBe(T * linearInputWidth(dims, input));
        return x;
      };
      // attn_in = input_layernorm(h): q/k/v read it.
      expect(maxRelError(at('attn_in'), rms(h.data, T, W.get(layerNormName(li, 'input_layernorm'))!))).toBeLessThan(1e-6);
      // attn_out = attention from q/k/v projections of attn_in (q = attn_in·Wqᵀ + b, RoPE, causal softmax).
      expect(maxRelError(at('attn_out'), attention(li, at('attn_in'), T))).toBeLessThan(1e-5);
      // mlp_in = post_attention_layernorm(h + attn_out·Woᵀ).
      const o = project(at('attn_out'), T, W.get(projectionName(li, 'o_proj'))!, undefined, d);
      const mid = Float64Array.from(o, (v, i) => v + h.data[i]);
      expect(maxRelError(at('mlp_in'), rms(mid, T, W.get(layerNormName(li, 'post_attention_layernorm'))!))).toBeLessThan(1e-5);
      // mlp_mid = silu(mlp_in·Wgᵀ)·(mlp_in·Wuᵀ).
      const F = dims.intermediate;
      const g = project(at('mlp_in'), T, W.get(projectionName(li, 'gate_proj'))!, undefined, F);
      const u = project(at('mlp_in'), T, W.get(projectionName(li, 'up_proj'))!, undefined, F);
      expect(maxRelError(at('mlp_mid'), Float64Array.from(g, (a, i) => (a / (1 + Math.exp(-a))) * u[i]))).toBeLessThan(1e-5);
      // output = h + attention + mlp_mid·Wdᵀ.
      const down = project(at('mlp_mid'), T, W.get(projectionName(li, 'down_proj'))!, undefined, d);
      expect(maxRelError(out.data, Float64Array.from(down, (v, i) => v + mid[i]))).toBeLessThan(1e-5);
      h = out;
    }
  });

  it('substituted weights change exactly that layer: its inputs before the projection stay, its output follows the new weight', async () => {
    const h0 = await model.embed(ids);
    const h1 = await model.runLayer(0, h0);
    const own = new Map<string, Float32Array>();
    const ref = await model.runLayer(1, h1, { hooks: collectHooks(own) });
    // The model's own weights passed as a substitute: bit-identical.
    const same = await model.runLayer(1, h1, { weights: { down_proj: W.get(projectionName(1, 'down_proj'))! } });
    expect(maxRelError(same.data, ref.data)).toBe(0);
    // A different down_proj: every linear input of the layer is unchanged, the output moves by mlp_mid·ΔWᵀ.
    const [out, inDim] = projectionShape(dims, 'down_proj');
    const delta = Float32Array.from({ length: out * inDim }, (_, i) => ((i * 7) % 13) * 1e-3 - 6e-3);
    const sub = Float32Array.from(W.get(projectionName(1, 'down_proj'))!, (w, i) => w + delta[i]);
    const seen = new Map<string, Float32Array>();
    const got = await model.runLayer(1, h1, { weights: { down_proj: sub }, hooks: collectHooks(seen) });
    for (const input of LINEAR_INPUTS) expect(maxRelError(seen.get(`1.${input}`)!, own.get(`1.${input}`)!), input).toBe(0);
    const moved = project(own.get('1.mlp_mid')!, ids.length, delta, undefined, d);
    expect(maxRelError(Float64Array.from(got.data, (v, i) => v - ref.data[i]), moved)).toBeLessThan(1e-4);
    expect(maxRelError(got.data, ref.data)).toBeGreaterThan(1e-4);
    // The input activation is not modified by runLayer.
    expect(maxRelError(h1.data, (await model.runLayer(0, h0)).data)).toBe(0);
    await expect(model.runLayer(1, h1, { weights: { q_proj: sub } })).rejects.toThrow(/substituted model\.layers\.1\.self_attn\.q_proj\.weight: 6144 elements, expected 64×64/);
  });

  it('the sequential GPTQ loop (collect inputs, substitute the layer, run it) equals a model built with the substituted weights', async () => {
    // A stand-in for quantization: round every projection to a grid of 1/64 steps.
    const quantized = new Map(W);
    const round = (w: Float32Array) => Float32Array.from(w, (v) => Math.round(v * 64) / 64);
    let h = await model.embed(ids);
    const inputsSeen: string[] = [];
    for (let li = 0; li < dims.layers; li++) {
      const seen = new Map<string, Float32Array>();
      await model.runLayer(li, h, { hooks: collectHooks(seen) }); // collect layer li's inputs
      for (const input of LINEAR_INPUTS) {
        inputsSeen.push(`${li}.${input}:${PROJECTIONS_BY_INPUT[input].join('+')}`);
        expect(seen.get(`${li}.${input}`)!.length).toBe(ids.length * linearInputWidth(dims, input));
      }
      const weights: Partial<Record<ProjName, Float32Array>> = {};
      for (const p of PROJECTIONS) {
        weights[p] = round(W.get(projectionName(li, p))!);
        quantized.set(projectionName(li, p), weights[p]);
      }
      h = await model.runLayer(li, h, { weights }); // layer li quantized → layer li+1's inputs
    }
    expect(inputsSeen.length).toBe(dims.layers * 4);
    const sequential = await model.head(h);
    const whole = await createQwen2Cpu(dims, quantized).logits(ids);
    expect(maxRelError(sequential, whole)).toBe(0);
    expect(maxRelError(sequential, await model.logits(ids))).toBeGreaterThan(1e-4);
  });
});
