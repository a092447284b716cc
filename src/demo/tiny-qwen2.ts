/**
 * Deterministic tiny random Qwen2 checkpoints: the app's built-in demo model (scripts/make-demo.ts)
 * and the tests' synthetic models (test/helpers re-exports this). Optionally with LLM-like
 * outlier channels, so rotation has something to fix. Pure: no Node or DOM APIs, so the same
 * bytes come out wherever it runs.
 */
import { encodeF16, encodeF32 } from '../core/safetensors/dtype';
import { planSafetensorsShards, SafetensorsStreamWriter, type TensorSpec } from '../core/safetensors/writer';
import type { Dtype } from '../core/safetensors/types';
import type { BundleSink, FileWriter } from '../core/ports';
import { PROJECTION_INFO, qwen2Tensors } from '../core/qwen2/tensors';

export interface TinyQwen2Options {
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  vocab: number;
  /** Tied embeddings (no `lm_head.weight`). */
  tie: boolean;
  seed: number;
  /**
   * LLM-like outliers: a few hidden channels get large RMSNorm gains (8–20) and ×5–10 columns
   * in the embedding and in q/k/v/gate/up, so per-tensor RTN without rotation suffers.
   */
  outliers?: boolean;
  ropeTheta?: number;
  eps?: number;
}

export interface TinyTensor {
  shape: number[];
  data: Float32Array;
}

export interface TinyQwen2 {
  /** HF `config.json` object. */
  config: Record<string, unknown>;
  /** Qwen2 names (SPEC §2) in model order. */
  tensors: Map<string, TinyTensor>;
  /** The outlier channel indices (empty without `outliers`). */
  outlierChannels: number[];
}

/**
 * mulberry32: a 32-bit state PRNG (Tommy Ettinger's public-domain design), uniform in [0, 1).
 * Small, fast and identical everywhere — all the tests need.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal samples by Box–Muller over a uniform source. */
export function gaussian(uniform: () => number): () => number {
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    const u = 1 - uniform(); // (0, 1]: log stays finite
    const v = uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}

export function makeTinyQwen2(opts: TinyQwen2Options): TinyQwen2 {
  const { hidden: d, intermediate: F, layers: L, heads: H, kvHeads: KV, vocab: V } = opts;
  if (d % H !== 0) throw new Error(`hidden ${d} not divisible by heads ${H}`);
  if (H % KV !== 0) throw new Error(`heads ${H} not divisible by kvHeads ${KV}`);
  const D = d / H;
  if (D % 2 !== 0) throw new Error(`head dim ${D} must be even`);
  const rand = mulberry32(opts.seed);
  const normal = gaussian(rand);
  const tensors = new Map<string, TinyTensor>();

  // Base std 0.02·k with k chosen per tensor so activations stay O(1): k = 50/√fan_in gives
  // std 1/√fan_in for the projections (unit-variance outputs); the output-side projections
  // (o/down) get half that so the residual stream grows slowly; embedding/LM head std 3/√d
  // gives logits with std ≈ 3 (a peaked but not one-hot next-token distribution).
  const gauss = (n: number, std: number): Float32Array => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = normal() * std;
    return a;
  };
  const add = (name: string, shape: number[], data: Float32Array) => tensors.set(name, { shape, data });

  // Outlier channels: 3 of d (fewer for tiny d), distinct, chosen by the PRNG.
  const outlierChannels: number[] = [];
  if (opts.outliers) {
    const count = Math.min(3, Math.max(1, Math.floor(d / 16)));
    while (outlierChannels.length < count) {
      const c = Math.floor(rand() * d);
      if (!outlierChannels.includes(c)) outlierChannels.push(c);
    }
    outlierChannels.sort((a, b) => a - b);
  }
  const uniformIn = (lo: number, hi: number) => lo + (hi - lo) * rand();
  /** Scale the outlier columns of an [rows, d] matrix by ×5–10 (one factor per column). */
  const boostColumns = (m: Float32Array, rows: number) => {
    for (const c of outlierChannels) {
      const f = uniformIn(5, 10);
      for (let r = 0; r < rows; r++) m[r * d + c] *= f;
    }
  };
  /** RMSNorm gain: 1 ± 0.2 (uniform), outlier channels 8–20. */
  const gains = (withOutliers: boolean): Float32Array => {
    const g = new Float32Array(d);
    for (let i = 0; i < d; i++) g[i] = uniformIn(0.8, 1.2);
    if (withOutliers) for (const c of outlierChannels) g[c] = uniformIn(8, 20);
    return g;
  };

  // Every tensor from the one Qwen2 description, in its forward order (which is also the order
  // the PRNG is drawn in, so the bytes are stable).
  const embedStd = 3 / Math.sqrt(d);
  const dims = { hidden: d, intermediate: F, layers: L, heads: H, kvHeads: KV, headDim: D, vocab: V, rmsNormEps: opts.eps ?? 1e-6, ropeTheta: opts.ropeTheta ?? 10000, tieWordEmbeddings: opts.tie };
  for (const t of qwen2Tensors(dims, { lmHead: !opts.tie })) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (t.role === 'embedding') {
      const embed = gauss(n, embedStd);
      boostColumns(embed, V);
      add(t.name, t.shape, embed);
    } else if (t.role === 'lm_head') {
      add(t.name, t.shape, gauss(n, embedStd));
    } else if (t.role === 'norm') {
      add(t.name, t.shape, gains(t.norm !== 'norm'));
    } else if (t.role === 'bias') {
      // Nonzero biases (Qwen's q/k biases are large; moderate here).
      add(t.name, t.shape, gauss(n, 0.3));
    } else {
      const [out, fanIn] = t.shape;
      const info = PROJECTION_INFO[t.proj!];
      // Output-side projections (o/down) get half the std so the residual stream grows slowly.
      const w = gauss(n, (info.residualSide === 'output' ? 0.5 : 1) / Math.sqrt(fanIn));
      if (info.residualSide === 'input') boostColumns(w, out);
      add(t.name, t.shape, w);
    }
  }

  const config: Record<string, unknown> = {
    architectures: ['Qwen2ForCausalLM'],
    attention_dropout: 0.0,
    bos_token_id: 1,
    eos_token_id: 2,
    hidden_act: 'silu',
    hidden_size: d,
    initializer_range: 0.02,
    intermediate_size: F,
    max_position_embeddings: 512,
    max_window_layers: L,
    model_type: 'qwen2',
    num_attention_heads: H,
    num_hidden_layers: L,
    num_key_value_heads: KV,
    rms_norm_eps: opts.eps ?? 1e-6,
    rope_theta: opts.ropeTheta ?? 10000,
    sliding_window: null,
    tie_word_embeddings: opts.tie,
    torch_dtype: 'float32',
    use_cache: true,
    use_sliding_window: false,
    vocab_size: V,
  };
  return { config, tensors, outlierChannels };
}

/** BF16 bytes: the upper 16 bits of each f32, rounded to nearest even; NaN stays a quiet NaN. */
export function encodeBF16(values: Float32Array): Uint8Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint8Array(values.length * 2);
  for (let i = 0; i < values.length; i++) {
    const f = bits[i];
    const h = (f & 0x7fffffff) > 0x7f800000 ? 0x7fc0 : (f + 0x7fff + ((f >>> 16) & 1)) >>> 16;
    out[2 * i] = h & 0xff; // little-endian
    out[2 * i + 1] = (h >>> 8) & 0xff;
  }
  return out;
}

export const TORCH_DTYPE: Record<Dtype, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

function encode(data: Float32Array, dtype: Dtype): Uint8Array {
  if (dtype === 'F32') return encodeF32(data);
  if (dtype === 'F16') return encodeF16(data);
  return encodeBF16(data);
}

export interface WriteTinyOptions {
  dtype: Dtype;
  /** Number of shards (HF naming + index); 1 or absent: one `model.safetensors`. */
  shards?: number;
}

/** Collects whole files in memory (the models here are tiny), in the order they were closed. */
function captureSink(out: { path: string; bytes: Uint8Array }[]): BundleSink {
  return {
    label: 'memory',
    async createFile(path): Promise<FileWriter> {
      const chunks: Uint8Array[] = [];
      return {
        async write(chunk) {
          chunks.push(chunk.slice());
        },
        async close() {
          const n = chunks.reduce((s, c) => s + c.length, 0);
          const bytes = new Uint8Array(n);
          let o = 0;
          for (const c of chunks) {
            bytes.set(c, o);
            o += c.length;
          }
          out.push({ path, bytes });
        },
      };
    },
    async finalize() {},
    async abort() {
      out.length = 0;
    },
  };
}

/**
 * The model as HF folder files: the weights (tensors sorted by name, as the fixture and HF's
 * serializer do; shards + index when asked), `config.json` and `generation_config.json`.
 */
export async function tinyQwen2Files(model: TinyQwen2, opts: WriteTinyOptions): Promise<{ path: string; bytes: Uint8Array }[]> {
  const names = [...model.tensors.keys()].sort();
  const specs: TensorSpec[] = names.map((name) => ({ name, dtype: opts.dtype, shape: model.tensors.get(name)!.shape }));
  const total = specs.reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1) * (opts.dtype === 'F32' ? 4 : 2), 0);

  const wanted = Math.max(1, Math.floor(opts.shards ?? 1));
  let maxShardBytes = total;
  if (wanted > 1) {
    // The planner packs greedily under a byte cap; find the smallest cap giving ≤ `wanted`
    // shards (the count only falls as the cap grows), so a request for N gives N when possible.
    let lo = Math.ceil(total / wanted);
    let hi = total;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      if (planSafetensorsShards(specs, { maxShardBytes: mid }).files.length <= wanted) hi = mid;
      else lo = mid + 1;
    }
    maxShardBytes = lo;
  }
  const layout = planSafetensorsShards(specs, { maxShardBytes });
  const files: { path: string; bytes: Uint8Array }[] = [];
  const writer = new SafetensorsStreamWriter(captureSink(files), layout);
  for (const name of names) await writer.writeTensor(name, encode(model.tensors.get(name)!.data, opts.dtype));
  await writer.finish();

  const text = (s: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(s, null, 2) + '\n');
  const config: Record<string, unknown> = { ...model.config, torch_dtype: TORCH_DTYPE[opts.dtype] };
  files.push({ path: 'config.json', bytes: text(config) });
  files.push({ path: 'generation_config.json', bytes: text({ bos_token_id: config.bos_token_id, eos_token_id: config.eos_token_id }) });
  // Weights in layout order, then the index, then the JSON files (the order writeTinyQwen2 reports).
  const order = [...layout.files.map((f) => f.fileName), 'model.safetensors.index.json', 'config.json', 'generation_config.json'];
  return files.sort((a, b) => order.indexOf(a.path) - order.indexOf(b.path));
}

/** The tensors as a WeightSource (f32, no file round trip). */
export function tinyWeights(model: TinyQwen2): Map<string, Float32Array> {
  return new Map([...model.tensors].map(([k, v]) => [k, v.data]));
}
