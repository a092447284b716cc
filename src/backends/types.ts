import type { Dtype } from '../core/safetensors/types';

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
   * Histogram over [−range, range] with `bins` equal bins:
   * i = floor(fround(fround(x + range) · fround(bins / (2·range)))) clamped to [0, bins − 1].
   */
  histogram(m: Mat, range: number, bins: number): Promise<Uint32Array>;
  /** Per row: diff[r] = Σ_c fround((a − b)²), ref[r] = Σ_c fround(a²), sequential f32 sums from 0. */
  rowSquaredErrors(a: Mat, b: Mat): Promise<{ diff: Float32Array; ref: Float32Array }>;
  /** Read back as little-endian bytes; F16 = round-to-nearest-even (IEEE binary16). */
  read(m: Mat, dtype: 'F16' | 'F32'): Promise<Uint8Array>;
  release(m: Mat): void;
  dispose(): Promise<void>;
}
