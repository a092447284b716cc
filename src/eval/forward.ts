/**
 * The one forward-pass interface of a Qwen2ForCausalLM, implemented on the CPU (forward-cpu.ts,
 * the oracle) and on WebGPU (forward-webgpu.ts). Async throughout, and layer by layer:
 *
 *   embed(ids) → runLayer(0, h) → … → runLayer(L−1, h) → head(h)
 *
 * is the whole model (equal to `logits(ids)`). `runLayer` can observe the input of every linear
 * (hooks, named by LINEAR_INPUTS of core/qwen2/tensors.ts: q/k/v share attn_in, o reads
 * attn_out, gate/up share mlp_in, down reads mlp_mid) and can run with substituted projection
 * weights — what sequential GPTQ needs: collect layer i's linear inputs, quantize layer i, run it
 * quantized to produce layer i+1's inputs.
 *
 * Activations are one sequence of `rows` tokens at positions 0…rows−1 (causal attention within
 * it). On WebGPU they stay on the device (GpuActivation holds a GPUBuffer); `read()` copies to
 * the host when the caller wants the numbers.
 */
import type { Qwen2Dims } from '../core/qwen2/config';
import type { LayerNormName, LinearInput, ProjName } from '../core/qwen2/tensors';

/** A `[rows × cols]` f32 activation matrix of one sequence, row-major. */
export interface Activation {
  readonly rows: number;
  readonly cols: number;
  /** The values on the host (a copy on WebGPU). */
  read(): Promise<Float32Array>;
}

/**
 * Called with the input of a layer's linears (before the projection). The activation is valid
 * until the hook returns: read it, copy it, or (WebGPU) submit GPU work that reads it before
 * returning — queue order runs that work before the buffer is reused. A hook must not call the
 * same model (its calls run one at a time).
 */
export type LinearHook<A extends Activation = Activation> = (x: A, at: { layer: number; input: LinearInput }) => void | Promise<void>;

export type LinearHooks<A extends Activation = Activation> = Partial<Record<LinearInput, LinearHook<A>>>;

export interface RunLayerOptions<A extends Activation = Activation, W = Float32Array> {
  hooks?: LinearHooks<A>;
  /** Projection weights `[out × in]` (projectionShape) to use instead of the model's for this call. */
  weights?: Partial<Record<ProjName, W>>;
  /** Norm gains (`[hidden]`; on WebGPU a `[1 × hidden]` matrix or host values) instead of the model's. */
  norms?: Partial<Record<LayerNormName, W>>;
  /** Projection biases (`[out]`, like norms) instead of the model's; `null`: this call runs without one. */
  biases?: Partial<Record<ProjName, W | null>>;
}

export interface HeadOptions {
  /** Return log-softmax rows instead of logits. */
  logSoftmax?: boolean;
  /** Only the last row (what generation needs). */
  lastOnly?: boolean;
}

/** What perplexity needs from a model. */
export interface LogitsModel {
  readonly vocab: number;
  /** Logits of every position, `[T × V]`. */
  logits(ids: number[]): Promise<Float32Array>;
  /** log-softmax of every position, `[T × V]` (e.g. computed on the GPU). */
  logProbs?(ids: number[]): Promise<Float32Array>;
}

/** What greedy generation needs: a KV-cached prefill and single-token steps. */
export interface GenerativeModel {
  /** Clear the cache, run `ids`, return the last position's logits `[V]`. */
  prefill(ids: number[]): Promise<Float32Array>;
  /** Append one token to the cache and return its logits `[V]`. */
  step(id: number): Promise<Float32Array>;
}

export interface Qwen2Forward<A extends Activation = Activation, W = Float32Array> extends LogitsModel, GenerativeModel {
  readonly kind: 'cpu' | 'webgpu';
  readonly dims: Qwen2Dims;
  readonly vocab: number;
  /** The token embeddings `[T × hidden]` of one sequence. */
  embed(ids: number[]): Promise<A>;
  /** Decoder layer `layer` on `hidden` `[T × hidden]`; returns a new activation (the input is kept). */
  runLayer(layer: number, hidden: A, opts?: RunLayerOptions<A, W>): Promise<A>;
  /** Final norm and LM head: logits (or log-probs) `[T × V]`, or `[V]` with lastOnly. */
  head(hidden: A, opts?: HeadOptions): Promise<Float32Array>;
  /** Free an activation returned by embed/runLayer (a no-op on the CPU). */
  release(a: A): void;
  logits(ids: number[]): Promise<Float32Array>;
  /**
   * log-softmax rows computed by the model; only where that beats the host (WebGPU). Without it
   * perplexity takes the f64 log-softmax of `logits` on the host.
   */
  logProbs?(ids: number[]): Promise<Float32Array>;
  /** Tokens in the generation KV cache. */
  readonly position: number;
  reset(): void;
  /** Free everything the model holds (on WebGPU every buffer; the device stays usable). */
  dispose(): void;
}

/** Tensors by HF name, f32, row-major; linear weights are `[out, in]`. */
export interface WeightSource {
  get(name: string): Float32Array | undefined;
}

/** Tensors by HF name, f32; may load lazily (a streamed model re-reads a layer per forward). */
export interface AsyncWeightSource {
  get(name: string): Float32Array | undefined | Promise<Float32Array | undefined>;
  /** Whether a tensor exists, without reading it (lazy sources); else `get` is used. */
  has?(name: string): boolean;
}

/** log-softmax of each row of `[rows × V]` logits, in f64 then rounded to f32. */
export function logSoftmaxRows(z: Float32Array, V: number): Float32Array {
  const out = new Float32Array(z.length);
  for (let o = 0; o < z.length; o += V) {
    let max = -Infinity;
    for (let i = 0; i < V; i++) if (z[o + i] > max) max = z[o + i];
    let sum = 0;
    for (let i = 0; i < V; i++) sum += Math.exp(z[o + i] - max);
    const lse = max + Math.log(sum);
    for (let i = 0; i < V; i++) out[o + i] = z[o + i] - lse;
  }
  return out;
}
