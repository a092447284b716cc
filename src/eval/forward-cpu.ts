/**
 * A plain TypeScript Qwen2 forward pass for tiny models — the test oracle, and the CPU
 * fallback of the in-app check (SPEC §7). Semantics follow transformers' `Qwen2ForCausalLM`
 * (eager attention): RMSNorm without mean-centring, rotate_half RoPE, causal GQA attention,
 * SwiGLU MLP, tied or separate LM head. Activations are stored as f32 like the reference;
 * dot products, norms and softmax accumulate in f64 (JS numbers) so the result is at least as
 * accurate as an f32 implementation.
 */
import type { Qwen2Dims } from '../core/qwen2/config';

/** Tensors by their HF name, f32, row-major; linear weights are `[out, in]`. */
export interface WeightSource {
  get(name: string): Float32Array | undefined;
}

/** What perplexity/generation needs from a model. */
export interface CausalLM {
  readonly vocab: number;
  /** Logits of every position, `[T × V]` row-major. Independent of the KV cache. */
  logits(ids: number[]): Float32Array;
  /** Clear the cache, run `ids`, return the last position's logits `[V]`. */
  prefill(ids: number[]): Float32Array;
  /** Append one token to the cache and return its logits `[V]`. */
  step(id: number): Float32Array;
}

export interface Qwen2Cpu extends CausalLM {
  readonly dims: Qwen2Dims;
  /** Number of tokens currently in the KV cache. */
  readonly position: number;
  reset(): void;
}

interface Linear {
  w: Float32Array;
  b: Float32Array | undefined;
  out: number;
  in: number;
}

interface Layer {
  inNorm: Float32Array;
  postNorm: Float32Array;
  q: Linear;
  k: Linear;
  v: Linear;
  o: Linear;
  gate: Linear;
  up: Linear;
  down: Linear;
}

/**
 * Per-layer K (after RoPE) and V of every cached position, stored transposed as
 * `[kvHeads·D × capacity]` so the attention loops run over contiguous positions.
 */
interface KvCache {
  k: Float32Array[];
  v: Float32Array[];
  length: number;
  capacity: number;
}

function need(weights: WeightSource, name: string, size: number): Float32Array {
  const t = weights.get(name);
  if (!t) throw new Error(`missing tensor ${name}`);
  if (t.length !== size) throw new Error(`tensor ${name}: ${t.length} elements, expected ${size}`);
  return t;
}

function optional(weights: WeightSource, name: string, size: number): Float32Array | undefined {
  const t = weights.get(name);
  if (t && t.length !== size) throw new Error(`tensor ${name}: ${t.length} elements, expected ${size}`);
  return t;
}

function linearOf(weights: WeightSource, prefix: string, out: number, inDim: number): Linear {
  return {
    w: need(weights, `${prefix}.weight`, out * inDim),
    b: optional(weights, `${prefix}.bias`, out),
    out,
    in: inDim,
  };
}

/**
 * y[t] = x[t]·Wᵀ + b for `rows` row vectors, f64 accumulation. Four rows share each weight
 * load (register blocking) — this is most of the oracle's run time.
 */
function linear(x: Float32Array, rows: number, l: Linear, y: Float32Array): void {
  const { w, b, out, in: n } = l;
  let t = 0;
  for (; t + 4 <= rows; t += 4) {
    const x0 = t * n;
    const x1 = x0 + n;
    const x2 = x1 + n;
    const x3 = x2 + n;
    const yo = t * out;
    for (let o = 0; o < out; o++) {
      const wo = o * n;
      let a0 = 0;
      let a1 = 0;
      let a2 = 0;
      let a3 = 0;
      for (let i = 0; i < n; i++) {
        const wi = w[wo + i];
        a0 += x[x0 + i] * wi;
        a1 += x[x1 + i] * wi;
        a2 += x[x2 + i] * wi;
        a3 += x[x3 + i] * wi;
      }
      const bo = b ? b[o] : 0;
      y[yo + o] = a0 + bo;
      y[yo + out + o] = a1 + bo;
      y[yo + 2 * out + o] = a2 + bo;
      y[yo + 3 * out + o] = a3 + bo;
    }
  }
  for (; t < rows; t++) {
    const xo = t * n;
    const yo = t * out;
    for (let o = 0; o < out; o++) {
      const wo = o * n;
      let a = 0;
      for (let i = 0; i < n; i++) a += x[xo + i] * w[wo + i];
      y[yo + o] = a + (b ? b[o] : 0);
    }
  }
}

/** out[t] = x[t] / sqrt(mean(x[t]²) + eps) · γ, the mean taken in f64. */
function rmsNorm(x: Float32Array, rows: number, d: number, gamma: Float32Array, eps: number, out: Float32Array): void {
  for (let t = 0; t < rows; t++) {
    const o = t * d;
    let ss = 0;
    for (let i = 0; i < d; i++) ss += x[o + i] * x[o + i];
    const inv = 1 / Math.sqrt(ss / d + eps);
    // transformers rounds the normalised value to the activation dtype before scaling by γ.
    for (let i = 0; i < d; i++) out[o + i] = Math.fround(x[o + i] * inv) * gamma[i];
  }
}

export function createQwen2Cpu(dims: Qwen2Dims, weights: WeightSource): Qwen2Cpu {
  const { hidden: d, intermediate: F, layers: L, heads: H, kvHeads: KV, headDim: D, vocab: V } = dims;
  if (H % KV !== 0) throw new Error(`heads ${H} not a multiple of kvHeads ${KV}`);
  if (D % 2 !== 0) throw new Error(`head dim ${D} must be even for RoPE`);
  const qDim = H * D;
  const kvDim = KV * D;
  const group = H / KV;
  const half = D / 2;
  const eps = dims.rmsNormEps;

  const embed = need(weights, 'model.embed_tokens.weight', V * d);
  const finalNorm = need(weights, 'model.norm.weight', d);
  const lmHead = optional(weights, 'lm_head.weight', V * d) ?? embed;
  const lmLinear: Linear = { w: lmHead, b: undefined, out: V, in: d };
  const layers: Layer[] = [];
  for (let i = 0; i < L; i++) {
    const p = `model.layers.${i}`;
    layers.push({
      inNorm: need(weights, `${p}.input_layernorm.weight`, d),
      postNorm: need(weights, `${p}.post_attention_layernorm.weight`, d),
      q: linearOf(weights, `${p}.self_attn.q_proj`, qDim, d),
      k: linearOf(weights, `${p}.self_attn.k_proj`, kvDim, d),
      v: linearOf(weights, `${p}.self_attn.v_proj`, kvDim, d),
      o: linearOf(weights, `${p}.self_attn.o_proj`, d, qDim),
      gate: linearOf(weights, `${p}.mlp.gate_proj`, F, d),
      up: linearOf(weights, `${p}.mlp.up_proj`, F, d),
      down: linearOf(weights, `${p}.mlp.down_proj`, d, F),
    });
  }

  // transformers: inv_freq = 1 / theta^(2i/D) in f32; angle = pos · inv_freq in f32.
  const invFreq = new Float32Array(half);
  for (let i = 0; i < half; i++) invFreq[i] = 1 / Math.pow(dims.ropeTheta, (2 * i) / D);
  let cos = new Float32Array(0);
  let sin = new Float32Array(0);
  let ropeLen = 0;
  function ensureRope(positions: number): void {
    if (positions <= ropeLen) return;
    const n = Math.max(positions, ropeLen * 2, 64);
    cos = new Float32Array(n * half);
    sin = new Float32Array(n * half);
    for (let p = 0; p < n; p++) {
      for (let i = 0; i < half; i++) {
        const a = Math.fround(p * invFreq[i]);
        cos[p * half + i] = Math.cos(a);
        sin[p * half + i] = Math.sin(a);
      }
    }
    ropeLen = n;
  }

  /** rotate_half RoPE in place on `count` heads of `rows` rows starting at absolute `pos0`. */
  function rope(x: Float32Array, rows: number, count: number, pos0: number): void {
    for (let t = 0; t < rows; t++) {
      const c = (pos0 + t) * half;
      for (let h = 0; h < count; h++) {
        const o = (t * count + h) * D;
        for (let i = 0; i < half; i++) {
          const x1 = x[o + i];
          const x2 = x[o + i + half];
          const cs = cos[c + i];
          const sn = sin[c + i];
          x[o + i] = x1 * cs - x2 * sn;
          x[o + i + half] = x2 * cs + x1 * sn;
        }
      }
    }
  }

  function newCache(capacity: number): KvCache {
    const k: Float32Array[] = [];
    const v: Float32Array[] = [];
    for (let i = 0; i < L; i++) {
      k.push(new Float32Array(capacity * kvDim));
      v.push(new Float32Array(capacity * kvDim));
    }
    return { k, v, length: 0, capacity };
  }

  function reserve(cache: KvCache, total: number): void {
    if (total <= cache.capacity) return;
    const cap = Math.max(total, cache.capacity * 2);
    const n = cache.length;
    const regrow = (a: Float32Array): Float32Array => {
      const b = new Float32Array(cap * kvDim);
      for (let r = 0; r < kvDim; r++) b.set(a.subarray(r * cache.capacity, r * cache.capacity + n), r * cap);
      return b;
    };
    for (let i = 0; i < L; i++) {
      cache.k[i] = regrow(cache.k[i]);
      cache.v[i] = regrow(cache.v[i]);
    }
    cache.capacity = cap;
  }

  /**
   * Runs `ids` as positions cache.length … cache.length+T−1, appending their K/V to the cache.
   * Returns logits of all T positions (`allLogits`) or only of the last one.
   */
  function forward(ids: number[], cache: KvCache, allLogits: boolean): Float32Array {
    const T = ids.length;
    if (T === 0) throw new Error('forward: empty input');
    const pos0 = cache.length;
    reserve(cache, pos0 + T);
    ensureRope(pos0 + T);

    const x = new Float32Array(T * d);
    for (let t = 0; t < T; t++) {
      const id = ids[t];
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`token id ${id} out of range [0, ${V})`);
      x.set(embed.subarray(id * d, id * d + d), t * d);
    }
    const xn = new Float32Array(T * d);
    const q = new Float32Array(T * qDim);
    const k = new Float32Array(T * kvDim);
    const v = new Float32Array(T * kvDim);
    const att = new Float32Array(T * qDim);
    const proj = new Float32Array(T * d);
    const g = new Float32Array(T * F);
    const u = new Float32Array(T * F);
    const total = pos0 + T;
    const scores = new Float64Array(total);
    const scale = 1 / Math.sqrt(D);

    for (let li = 0; li < L; li++) {
      const ly = layers[li];
      rmsNorm(x, T, d, ly.inNorm, eps, xn);
      linear(xn, T, ly.q, q);
      linear(xn, T, ly.k, k);
      linear(xn, T, ly.v, v);
      rope(q, T, H, pos0);
      rope(k, T, KV, pos0);
      const kc = cache.k[li];
      const vc = cache.v[li];
      const cap = cache.capacity;
      for (let t = 0; t < T; t++) {
        for (let r = 0; r < kvDim; r++) {
          kc[r * cap + pos0 + t] = k[t * kvDim + r];
          vc[r * cap + pos0 + t] = v[t * kvDim + r];
        }
      }

      for (let t = 0; t < T; t++) {
        const n = pos0 + t + 1; // causal: attend to positions 0..pos0+t
        for (let h = 0; h < H; h++) {
          const qo = (t * H + h) * D;
          const kvo = Math.floor(h / group) * D;
          scores.fill(0, 0, n);
          for (let i = 0; i < D; i++) {
            const qi = q[qo + i] * scale;
            const ko = (kvo + i) * cap;
            for (let s = 0; s < n; s++) scores[s] += qi * kc[ko + s];
          }
          let max = -Infinity;
          for (let s = 0; s < n; s++) if (scores[s] > max) max = scores[s];
          let sum = 0;
          for (let s = 0; s < n; s++) {
            const e = Math.exp(scores[s] - max);
            scores[s] = e;
            sum += e;
          }
          const inv = 1 / sum;
          for (let i = 0; i < D; i++) {
            const vo = (kvo + i) * cap;
            let a = 0;
            for (let s = 0; s < n; s++) a += scores[s] * vc[vo + s];
            att[qo + i] = a * inv;
          }
        }
      }
      linear(att, T, ly.o, proj);
      for (let i = 0; i < T * d; i++) x[i] += proj[i];

      rmsNorm(x, T, d, ly.postNorm, eps, xn);
      linear(xn, T, ly.gate, g);
      linear(xn, T, ly.up, u);
      for (let i = 0; i < T * F; i++) {
        const gi = g[i];
        g[i] = (gi / (1 + Math.exp(-gi))) * u[i];
      }
      linear(g, T, ly.down, proj);
      for (let i = 0; i < T * d; i++) x[i] += proj[i];
    }
    cache.length = total;

    if (allLogits) {
      rmsNorm(x, T, d, finalNorm, eps, xn);
      const out = new Float32Array(T * V);
      linear(xn, T, lmLinear, out);
      return out;
    }
    // Only the last position is needed: skip the LM head for the others.
    const lastX = x.subarray((T - 1) * d, T * d);
    const lastN = new Float32Array(d);
    rmsNorm(lastX, 1, d, finalNorm, eps, lastN);
    const out = new Float32Array(V);
    linear(lastN, 1, lmLinear, out);
    return out;
  }

  let cache = newCache(64);
  return {
    dims,
    vocab: V,
    get position() {
      return cache.length;
    },
    reset() {
      cache = newCache(64);
    },
    logits(ids: number[]): Float32Array {
      return forward(ids, newCache(ids.length), true);
    },
    prefill(ids: number[]): Float32Array {
      cache = newCache(Math.max(64, ids.length));
      return forward(ids, cache, false);
    },
    step(id: number): Float32Array {
      return forward([id], cache, false);
    },
  };
}
