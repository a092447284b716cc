/**
 * A plain TypeScript Qwen2 forward pass for tiny models — the test oracle, and the CPU
 * fallback of the in-app check (SPEC §7). Semantics follow transformers' `Qwen2ForCausalLM`
 * (eager attention): RMSNorm without mean-centring, rotate_half RoPE, causal GQA attention,
 * SwiGLU MLP, tied or separate LM head. Activations are stored as f32 like the reference;
 * dot products, norms and softmax accumulate in f64 (JS numbers) so the result is at least as
 * accurate as an f32 implementation. Implements the layer-by-layer interface of forward.ts.
 */
import type { Qwen2Dims } from '../core/qwen2/config';
import { ropeTables } from '../core/qwen2/rope';
import {
  EMBEDDING, FINAL_NORM, LM_HEAD, PROJECTIONS, layerNormName, linearInputWidth, projectionName, projectionShape,
  type LayerNormName, type LinearInput, type ProjName,
} from '../core/qwen2/tensors';
import type { Activation, HeadOptions, Qwen2Forward, RunLayerOptions, WeightSource } from './forward';

export type { WeightSource } from './forward';

/** A host activation; `data` is the live array (copy it to keep it beyond a hook), `read()` a copy. */
export class CpuActivation implements Activation {
  constructor(
    readonly rows: number,
    readonly cols: number,
    readonly data: Float32Array,
  ) {}

  async read(): Promise<Float32Array> {
    return this.data.slice(0, this.rows * this.cols);
  }
}

export interface Qwen2Cpu extends Qwen2Forward<CpuActivation, Float32Array> {
  readonly kind: 'cpu';
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
  mats: Record<ProjName, Linear>;
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

  const embedTable = need(weights, EMBEDDING, V * d);
  const finalNorm = need(weights, FINAL_NORM, d);
  const lmLinear: Linear = { w: optional(weights, LM_HEAD, V * d) ?? embedTable, b: undefined, out: V, in: d };
  const layers: Layer[] = [];
  for (let li = 0; li < L; li++) {
    const mats = {} as Record<ProjName, Linear>;
    for (const proj of PROJECTIONS) {
      const [out, inDim] = projectionShape(dims, proj);
      mats[proj] = { w: need(weights, projectionName(li, proj), out * inDim), b: optional(weights, projectionName(li, proj, 'bias'), out), out, in: inDim };
    }
    layers.push({
      inNorm: need(weights, layerNormName(li, 'input_layernorm'), d),
      postNorm: need(weights, layerNormName(li, 'post_attention_layernorm'), d),
      mats,
    });
  }

  let rope: { cos: Float32Array; sin: Float32Array } = { cos: new Float32Array(0), sin: new Float32Array(0) };
  let ropeLen = 0;
  function ensureRope(positions: number): void {
    if (positions <= ropeLen) return;
    ropeLen = Math.max(positions, ropeLen * 2, 64);
    rope = ropeTables(D, dims.ropeTheta, ropeLen);
  }

  /** rotate_half RoPE in place on `count` heads of `rows` rows starting at absolute `pos0`. */
  function applyRope(x: Float32Array, rows: number, count: number, pos0: number): void {
    const { cos, sin } = rope;
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

  /** A cache for every layer, or (runLayer) for `only` that one. */
  function newCache(capacity: number, only?: number): KvCache {
    const k: Float32Array[] = [];
    const v: Float32Array[] = [];
    for (let i = 0; i < L; i++) {
      const n = only === undefined || only === i ? capacity * kvDim : 0;
      k.push(new Float32Array(n));
      v.push(new Float32Array(n));
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

  function embedRows(ids: number[]): Float32Array {
    const T = ids.length;
    if (T === 0) throw new Error('forward: empty input');
    const x = new Float32Array(T * d);
    for (let t = 0; t < T; t++) {
      const id = ids[t];
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`token id ${id} out of range [0, ${V})`);
      x.set(embedTable.subarray(id * d, id * d + d), t * d);
    }
    return x;
  }

  /** The layer's projection, or the caller's substitutes for its weights and bias (same shapes). */
  function matOf(li: number, proj: ProjName, opts: RunLayerOptions<CpuActivation, Float32Array> | undefined): Linear {
    let m = layers[li].mats[proj];
    const w = opts?.weights?.[proj];
    if (w) {
      if (w.length !== m.out * m.in) throw new Error(`substituted ${projectionName(li, proj)}: ${w.length} elements, expected ${m.out}×${m.in}`);
      m = { ...m, w };
    }
    const b = opts?.biases?.[proj];
    if (b !== undefined) {
      if (b && b.length !== m.out) throw new Error(`substituted ${projectionName(li, proj, 'bias')}: ${b.length} elements, expected ${m.out}`);
      m = { ...m, b: b ?? undefined };
    }
    return m;
  }

  /** The layer's norm gains, or the caller's substitute. */
  function normOf(li: number, norm: LayerNormName, opts: RunLayerOptions<CpuActivation, Float32Array> | undefined): Float32Array {
    const g = opts?.norms?.[norm];
    if (!g) return norm === 'input_layernorm' ? layers[li].inNorm : layers[li].postNorm;
    if (g.length !== d) throw new Error(`substituted ${layerNormName(li, norm)}: ${g.length} elements, expected ${d}`);
    return g;
  }

  /**
   * Decoder layer `li` on rows x (positions cache.length … +T−1), in place; appends K/V to
   * the cache (the caller advances cache.length after the last layer).
   */
  async function layerForward(li: number, x: Float32Array, T: number, cache: KvCache, opts?: RunLayerOptions<CpuActivation, Float32Array>): Promise<void> {
    const pos0 = cache.length;
    const hooks = opts?.hooks;
    const hook = async (input: LinearInput, buf: Float32Array) => {
      const f = hooks?.[input];
      if (f) {
        const w = linearInputWidth(dims, input);
        await f(new CpuActivation(T, w, buf.subarray(0, T * w)), { layer: li, input });
      }
    };
    const mat = (p: ProjName) => matOf(li, p, opts);
    const xn = new Float32Array(T * d);
    const q = new Float32Array(T * qDim);
    const k = new Float32Array(T * kvDim);
    const v = new Float32Array(T * kvDim);
    const att = new Float32Array(T * qDim);
    const proj = new Float32Array(T * d);
    const g = new Float32Array(T * F);
    const u = new Float32Array(T * F);
    const scores = new Float64Array(pos0 + T);
    const scale = 1 / Math.sqrt(D);

    rmsNorm(x, T, d, normOf(li, 'input_layernorm', opts), eps, xn);
    await hook('attn_in', xn);
    linear(xn, T, mat('q_proj'), q);
    linear(xn, T, mat('k_proj'), k);
    linear(xn, T, mat('v_proj'), v);
    applyRope(q, T, H, pos0);
    applyRope(k, T, KV, pos0);
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
    await hook('attn_out', att);
    linear(att, T, mat('o_proj'), proj);
    for (let i = 0; i < T * d; i++) x[i] += proj[i];

    rmsNorm(x, T, d, normOf(li, 'post_attention_layernorm', opts), eps, xn);
    await hook('mlp_in', xn);
    linear(xn, T, mat('gate_proj'), g);
    linear(xn, T, mat('up_proj'), u);
    for (let i = 0; i < T * F; i++) {
      const gi = g[i];
      g[i] = (gi / (1 + Math.exp(-gi))) * u[i];
    }
    await hook('mlp_mid', g);
    linear(g, T, mat('down_proj'), proj);
    for (let i = 0; i < T * d; i++) x[i] += proj[i];
  }

  /** Final norm + LM head of all T rows (or only the last). */
  function headRows(x: Float32Array, T: number, opts: HeadOptions = {}): Float32Array {
    const rows = opts.lastOnly ? 1 : T;
    const src = opts.lastOnly ? x.subarray((T - 1) * d, T * d) : x;
    const xn = new Float32Array(rows * d);
    rmsNorm(src, rows, d, finalNorm, eps, xn);
    const out = new Float32Array(rows * V);
    linear(xn, rows, lmLinear, out);
    if (opts.logSoftmax) {
      for (let r = 0; r < rows; r++) {
        const o = r * V;
        let max = -Infinity;
        for (let i = 0; i < V; i++) if (out[o + i] > max) max = out[o + i];
        let sum = 0;
        for (let i = 0; i < V; i++) sum += Math.exp(out[o + i] - max);
        const lse = max + Math.log(sum);
        for (let i = 0; i < V; i++) out[o + i] -= lse;
      }
    }
    return out;
  }

  /** Runs `ids` at the cache's end through every layer; logits of all positions or the last. */
  async function forward(ids: number[], cache: KvCache, head: HeadOptions): Promise<Float32Array> {
    const x = embedRows(ids);
    const T = ids.length;
    reserve(cache, cache.length + T);
    ensureRope(cache.length + T);
    for (let li = 0; li < L; li++) await layerForward(li, x, T, cache);
    cache.length += T;
    return headRows(x, T, head);
  }

  const check = (h: CpuActivation, what: string) => {
    if (!(h instanceof CpuActivation) || h.cols !== d || h.rows < 1) throw new Error(`${what}: expected a CPU activation of [T × ${d}]`);
  };

  let cache = newCache(64);
  return {
    kind: 'cpu',
    dims,
    vocab: V,
    get position() {
      return cache.length;
    },
    reset() {
      cache = newCache(64);
    },
    async embed(ids) {
      return new CpuActivation(ids.length, d, embedRows(ids));
    },
    async runLayer(li, hidden, opts) {
      if (!Number.isInteger(li) || li < 0 || li >= L) throw new Error(`runLayer: layer ${li} outside [0, ${L})`);
      check(hidden, 'runLayer');
      const T = hidden.rows;
      const x = hidden.data.slice(0, T * d);
      ensureRope(T);
      await layerForward(li, x, T, newCache(T, li), opts);
      return new CpuActivation(T, d, x);
    },
    async head(hidden, opts) {
      check(hidden, 'head');
      return headRows(hidden.data, hidden.rows, opts);
    },
    release() {},
    logits: (ids) => forward(ids, newCache(ids.length), {}),
    prefill(ids) {
      cache = newCache(Math.max(64, ids.length));
      return forward(ids, cache, { lastOnly: true });
    },
    step: (id) => forward([id], cache, { lastOnly: true }),
    dispose() {},
  };
}
