/**
 * The core's ports: what the pipeline needs from the outside (a compute backend, a model source,
 * a bundle sink). Backends, sources and sinks implement these; src/core imports nothing above it.
 */
import type { GptqOptions, GptqResult } from './quant/gptq';
import type { Qwen2Dims } from './qwen2/config';
import type { LinearInput } from './qwen2/tensors';
import type { Dtype } from './safetensors/types';

// ── compute ──────────────────────────────────────────────────────────────────────────────────

/**
 * An opaque matrix living on a backend (a Float32Array on the CPU, a GPUBuffer on WebGPU).
 * Row-major, `rows × cols`, f32.
 */
export interface Mat {
  readonly rows: number;
  readonly cols: number;
}

/**
 * The transform `v ↦ Ĥᵀ·(s ⊙ v)` applied to a vector of `length` elements, cut into
 * consecutive segments of `segment` elements (segment = K·2^m; block rotation and the per-head
 * R2 use several segments, full rotation one). Canonical f32 order, identical on every backend:
 *   1. v[i] *= signs[i]                                   (exact)
 *   2. within each segment, for each a < K: in-place FWHT over the 2^m elements
 *      [a·2^m, (a+1)·2^m) — natural-order Sylvester butterflies (x, y) → (x + y, x − y),
 *      strides h = 1, 2, 4, …
 *   3. if K > 1, within each segment, for each b < 2^m:
 *      out[a·2^m + b] = Σ_{a' = 0..K−1} hK[a'·K + a] · v[a'·2^m + b]
 *      summed sequentially in a' order starting from the a' = 0 term (hK entries are ±1, so
 *      these are f32 adds/subtracts only);
 *   4. v[i] *= scale, scale = fround(1 / sqrt(segment)).
 */
export interface RotationSpec {
  length: number;
  segment: number;
  /** K of segment = K·2^m. */
  k: number;
  /** H_K, K×K row-major, entries ±1 (Int8Array of [1] for K = 1). */
  hK: Int8Array;
  /** ±1 per element, `length` long. */
  signs: Float32Array;
  /** fround(1 / sqrt(segment)). */
  scale: number;
}

/**
 * The per-tensor math of the pipeline. The pipeline (src/core/pipeline) decides what to do;
 * a backend only executes these primitives. Every backend must give bit-identical results:
 * all arithmetic is IEEE f32 with the operation order documented on each method (no fused
 * multiply-add where it would change a result), so bundles are byte-identical across backends.
 */
export interface Backend {
  readonly name: 'cpu' | 'webgpu';
  /** e.g. "CPU (TypeScript)" or the GPU adapter's vendor/architecture/description. */
  readonly description: string;

  /** Decode little-endian source bytes (F32/F16/BF16) into a new f32 matrix. */
  upload(bytes: Uint8Array, dtype: Dtype, rows: number, cols: number): Promise<Mat>;
  clone(m: Mat): Promise<Mat>;
  /** m[r][c] = fround(m[r][c] · gamma[c]). */
  scaleColumns(m: Mat, gamma: Float32Array): Promise<void>;
  /** Each row (a vector of `cols` elements) ↦ T(row); spec.length === cols. */
  rotateRows(m: Mat, spec: RotationSpec): Promise<void>;
  /** Each column (a vector of `rows` elements) ↦ T(column); spec.length === rows. */
  rotateColumns(m: Mat, spec: RotationSpec): Promise<void>;
  /** max_c |m[r][c]| per row. */
  rowAbsMax(m: Mat): Promise<Float32Array>;
  /**
   * MSE clip search. For each row r and candidate k (N = alphas.length):
   *   step = fround(rowBase[r] · alphas[k]); inv = fround(rowInvBase[r] · invAlphas[k]);
   *   q = clamp(roundHalfEven(fround(w · inv)), qmin, qmax); e = fround(w − fround(step · q));
   *   sse[r·N + k] = sequential f32 sum over c = 0..cols−1 of fround(e · e), starting from 0.
   */
  mseRowErrors(
    m: Mat,
    rowBase: Float32Array,
    rowInvBase: Float32Array,
    alphas: Float32Array,
    invAlphas: Float32Array,
    qmin: number,
    qmax: number,
  ): Promise<Float32Array>;
  /**
   * New matrix of fake-quant values: q = clamp(roundHalfEven(fround(w · rowInv[r])), qmin, qmax);
   * v = fround(rowStep[r] · q); if roundToF16, v = f16 round-to-nearest-even of v (as f32).
   * Also returns the integer codes' histogram: codeCounts[q − qmin].
   */
  quantize(
    m: Mat,
    rowStep: Float32Array,
    rowInv: Float32Array,
    qmin: number,
    qmax: number,
    roundToF16: boolean,
  ): Promise<{ mat: Mat; codeCounts: Uint32Array }>;
  /**
   * New matrix of fake-quant values on a sorted codebook C (2…256 strictly increasing F16
   * entries, src/core/quant/codebook.ts): x = fround(w · rowInv[r]); k = the number of
   * thresholds t_i = fround((C_i + C_{i+1}) / 2) with t_i < x (nearest entry, a value on a
   * threshold goes to the lower one); v = fround(rowStep[r] · C_k); if roundToF16, v = f16
   * round-to-nearest-even of v (as f32). Also returns the entries' histogram: codeCounts[k].
   */
  quantizeToCodebook(
    m: Mat,
    rowStep: Float32Array,
    rowInv: Float32Array,
    codebook: Float32Array,
    roundToF16: boolean,
  ): Promise<{ mat: Mat; codeCounts: Uint32Array }>;
  /**
   * Histogram over [−range, range] with `bins` equal bins:
   * i = floor(fround(fround(x + range) · fround(bins / (2·range)))) clamped to [0, bins − 1].
   */
  histogram(m: Mat, range: number, bins: number): Promise<Uint32Array>;
  /** Per row: diff[r] = Σ_c fround((a − b)²), ref[r] = Σ_c fround(a²), sequential f32 sums from 0. */
  rowSquaredErrors(a: Mat, b: Mat): Promise<{ diff: Float32Array; ref: Float32Array }>;
  /**
   * Optional: a new matrix of the given rows of m (indices increasing, each < m.rows), in that
   * order. Lets the pipeline compute report-only figures on sampled rows; absent, it uses all rows.
   */
  takeRows?(m: Mat, rows: Int32Array): Promise<Mat>;
  /** Read back as little-endian bytes; F16 = round-to-nearest-even (IEEE binary16). */
  read(m: Mat, dtype: 'F16' | 'F32'): Promise<Uint8Array>;
  release(m: Mat): void;
  dispose(): Promise<void>;
  /**
   * Where GPTQ's heavy parts (Hessian accumulation, column updates) run on this backend; absent:
   * on the host (core's cpuGptqEngine). Unlike the primitives above, a backend's GPTQ need not
   * be bit-identical to the CPU's (f32 on a GPU vs f64), only deterministic.
   */
  readonly gptq?: GptqEngine;
}

// ── GPTQ ─────────────────────────────────────────────────────────────────────────────────────

/** Σ x xᵀ over the calibration rows of one linear input, accumulated where the engine runs. */
export interface HessianAccumulation {
  readonly dim: number;
  /** Rows (tokens) added so far. */
  readonly samples: number;
  /** Add x's rows (x.cols === dim). Non-finite values are refused (GptqError). */
  add(x: LinearInputRows): Promise<void>;
  /** H = (2 / n) Σ x xᵀ, full symmetric, f64 on the host (all zeros when nothing was added). */
  hessian(): Promise<Float64Array>;
  /** Free what the accumulation holds (idempotent). */
  dispose(): void;
}

/**
 * GPTQ's heavy parts on one device: the CPU engine (src/core/quant/gptq-engine.ts, f64, the
 * oracle) or a GPU's (f32 kernels; the Cholesky of H⁻¹ stays on the host in f64). Same inputs,
 * same engine → same bytes.
 */
export interface GptqEngine {
  readonly description: string;
  hessian(dim: number, name?: string): HessianAccumulation;
  /** gptqQuantize's contract (src/core/quant/gptq.ts). */
  quantize(w: Float32Array, rows: number, cols: number, h: Float64Array, opts: GptqOptions): Promise<GptqResult>;
}

// ── input and output ─────────────────────────────────────────────────────────────────────────

/**
 * Random-access bytes: a local file, a `File`, an HTTP resource read with range requests.
 * `read` returns exactly `length` bytes or throws.
 */
export interface ByteSource {
  readonly name: string;
  readonly size: number;
  read(offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array>;
}

/** Where a model's files come from (a folder, dropped files, a Hub repo). */
export interface ModelSource {
  /** Human label: a path, "dropped files", or "org/repo@sha". */
  readonly label: string;
  /** Hub repo id and resolved commit sha, when the source is the Hub. */
  readonly repo?: string;
  readonly revision?: string;
  /** Relative paths of every file the source has (e.g. "config.json", "model.safetensors"). */
  listFiles(): Promise<string[]>;
  open(path: string): Promise<ByteSource>;
  /**
   * Optional read-ahead hint (the Hub source coalesces these into few large range requests):
   * the byte ranges of `path` the pipeline is going to read, in the order it will read them.
   */
  prefetch?(path: string, ranges: { offset: number; length: number }[]): Promise<void>;
}

/** One output file being written sequentially. */
export interface FileWriter {
  write(chunk: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

/** Where a bundle goes (a folder on disk, a zip stream, OPFS, memory). */
export interface BundleSink {
  readonly label: string;
  /** Open `path` (relative to the bundle root) for sequential writing; `size` is the final size when known. */
  createFile(path: string, size?: number): Promise<FileWriter>;
  /** Everything written: verify and make the bundle visible as complete. */
  finalize(): Promise<void>;
  /** Failure or cancellation: remove/invalidate whatever was written so nothing looks complete. */
  abort(reason?: unknown): Promise<void>;
}

/**
 * Scratch bytes for one tensor being processed in tiles (the transformed f32 of a tensor whose
 * column rotation needs every row, or tiles kept so a pass need not re-read and re-transform
 * them): a temp file in Node, memory in the browser. Positioned reads and writes, one at a time.
 */
export interface Spool {
  write(offset: number, bytes: Uint8Array): Promise<void>;
  /** Exactly `length` bytes at `offset` (written before). */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Free the scratch space (idempotent). */
  dispose(): Promise<void>;
}

/** Makes a spool of `size` bytes. */
export type SpoolFactory = (size: number) => Promise<Spool>;

// ── calibration forward pass (GPTQ) ──────────────────────────────────────────────────────────

/**
 * A layer's weights by HF tensor name (its norms, projections and biases), f32 row-major. The
 * same array for a name means the same values: a forward pass may keep a device copy of an
 * array it has seen (so never modify an array after handing it out; give a new one).
 */
export type LayerWeights = (name: string) => Float32Array | undefined;

/**
 * A linear's input rows as the forward pass holds them: `rows × cols` f32 (tokens × the linear's
 * in-dim), on the host (`host`) or on a device (a GptqEngine on the same device reads them in
 * place; anyone else calls `read()`). Valid until the hook's promise settles.
 */
export interface LinearInputRows {
  readonly rows: number;
  readonly cols: number;
  /** The values when they already are on the host (a view, not a copy). */
  readonly host?: Float32Array;
  /** The values on the host (a copy from a device). */
  read(): Promise<Float32Array>;
}

/** Sees each linear input of a layer; the pass waits for the returned promise. */
export type LinearInputHook = (input: LinearInput, x: LinearInputRows) => void | Promise<void>;

/**
 * The layer-by-layer forward pass sequential GPTQ runs on: the residual stream of each
 * calibration sample goes through one decoder layer at a time, with the weights the caller
 * gives (the transformed layer to collect Hessians, then the quantized one to make the next
 * layer's inputs). Implemented above core (src/eval) for the CPU and WebGPU.
 */
export interface CalibrationForward {
  readonly description: string;
  /** The residual stream after the embedding for one sample, `ids.length × hidden`. */
  embed(ids: number[]): Promise<Float32Array>;
  /** One decoder layer on one sample's residual stream; returns the next residual stream. */
  runLayer(layer: number, hidden: Float32Array, weights: LayerWeights, onInput?: LinearInputHook): Promise<Float32Array>;
  dispose(): Promise<void>;
}

/** Makes the forward pass for a run, from the model's dimensions and the embedding as the bundle stores it (f32). */
export type CalibrationForwardFactory = (dims: Qwen2Dims, embedding: Float32Array) => Promise<CalibrationForward>;
