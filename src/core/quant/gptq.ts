/**
 * GPTQ (Frantar et al., "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained
 * Transformers", 2022) for one linear layer y = W x, W of shape [rows, cols] (rows = outputs,
 * cols = inputs), on the fixed row steps RTN chose (scales.ts `chooseScales`), so the result
 * stays in the ANEMLL SP format: only the integer codes change.
 *
 * The proxy loss is ‖(W − Ŵ) X‖² = tr((W − Ŵ) H (W − Ŵ)ᵀ) with H = 2/n · Σ x xᵀ over the
 * calibration inputs of the layer. Columns are quantized one at a time; the error of each is
 * pushed onto the columns not yet quantized through the upper Cholesky factor of H⁻¹. Rows are
 * independent (H is shared), which is what lets this run row group by row group.
 *
 * Everything is f64 except the rounding itself, which is exactly the `quantize` kernel's
 * (src/core/ports.ts): q = clamp(roundHalfEven(fround(fround(w) · rowInv[r])), qmin, qmax),
 * v = fround(rowStep[r] · q), then f16-rounded when asked — or, with a learned codebook, the
 * `quantizeToCodebook` kernel's nearest entry (src/core/quant/codebook.ts).
 *
 * Determinism: every floating-point sum below runs in a fixed order that depends only on the
 * inputs and `actOrder`, not on `blockSize` (the lazy block update subtracts the same terms in
 * the same order as the column-by-column one) — same inputs, same bytes.
 */
import { roundToF16 as roundToF16Value } from '../safetensors/dtype';
import { codebookThresholds, nearestEntryIndex } from './codebook';

const fround = Math.fround;

/** Round half to even for |x| < 2^51 (the f64 addition does the rounding); larger |x| is clamped anyway. */
const RNE_MAGIC = 6755399441055744;

/** GPTQ could not run on a tensor: non-finite input, or a Hessian no damping makes positive definite. */
export class GptqError extends Error {
  readonly tensor?: string;
  constructor(message: string, tensor?: string) {
    super(message);
    this.name = 'GptqError';
    this.tensor = tensor;
  }
}

/**
 * Streaming accumulator of Σ x xᵀ over calibration rows x (tokens) of one linear's input, in
 * f64. Only the upper triangle is accumulated; `hessian()` mirrors it. Rows can be added chunk
 * by chunk (one calibration window at a time); the result does not depend on the chunking
 * (each entry is a sum over rows in row order).
 */
export class HessianAccumulator {
  readonly dim: number;
  /** Σ x xᵀ, upper triangle (row-major dim × dim; the lower part stays 0 until `hessian()`). */
  private readonly sum: Float64Array;
  /** Calibration rows (tokens) added so far. */
  private count = 0;

  constructor(dim: number) {
    if (!Number.isInteger(dim) || dim < 1) throw new RangeError(`HessianAccumulator: dim ${dim} must be a positive integer`);
    this.dim = dim;
    this.sum = new Float64Array(dim * dim);
  }

  /** Number of rows (tokens) accumulated: the n of H = 2/n Σ x xᵀ. */
  get samples(): number {
    return this.count;
  }

  /**
   * Add `nRows` rows of a row-major [nRows, dim] block (f32 activations or f64).
   * Non-finite values are rejected (a NaN would poison every later update).
   */
  addRows(x: Float32Array | Float64Array, nRows: number, name?: string): void {
    const d = this.dim;
    if (!Number.isInteger(nRows) || nRows < 0) throw new RangeError(`addRows: nRows ${nRows} must be a non-negative integer`);
    if (x.length < nRows * d) throw new RangeError(`addRows: ${x.length} values for ${nRows} rows of ${d}`);
    // Transposed chunks of up to CHUNK rows: each H entry then runs over contiguous memory, and
    // the rows still enter every entry one at a time in row order (so chunking changes nothing).
    const CHUNK = 64;
    const xt = new Float64Array(d * CHUNK);
    for (let r0 = 0; r0 < nRows; r0 += CHUNK) {
      const n = Math.min(CHUNK, nRows - r0);
      for (let k = 0; k < n; k++) {
        const o = (r0 + k) * d;
        for (let i = 0; i < d; i++) {
          const v = x[o + i];
          if (!Number.isFinite(v)) {
            throw new GptqError(`calibration input${name ? ` of ${name}` : ''} has a non-finite value (${v}) at row ${r0 + k}, column ${i}`, name);
          }
          xt[i * CHUNK + k] = v;
        }
      }
      const h = this.sum;
      for (let i = 0; i < d; i++) {
        const oi = i * CHUNK;
        const hi = i * d;
        for (let j = i; j < d; j++) {
          const oj = j * CHUNK;
          let s = h[hi + j];
          for (let k = 0; k < n; k++) s += xt[oi + k] * xt[oj + k];
          h[hi + j] = s;
        }
      }
    }
    this.count += nRows;
  }

  /**
   * The full symmetric H = (2 / n) · Σ x xᵀ (the paper's normalisation; GPTQ itself and the
   * output-error ratio do not depend on the factor). All zeros when no rows were added.
   */
  hessian(): Float64Array {
    const d = this.dim;
    const out = new Float64Array(d * d);
    const f = this.count > 0 ? 2 / this.count : 0;
    for (let i = 0; i < d; i++) {
      for (let j = i; j < d; j++) {
        const v = this.sum[i * d + j] * f;
        out[i * d + j] = v;
        out[j * d + i] = v;
      }
    }
    return out;
  }
}

/** Columns per panel of the blocked factorisation and inverse. */
const PANEL = 32;
/** Column tile of GPTQ's lazy block update (16 rows × 256 f64 of W and one row of U in L1). */
const JTILE = 256;
/** k-tile of the panel update: PANEL rows × KTILE f64 = 128 KiB stay in L2 while every row i passes. */
const KTILE = 512;

/**
 * In place on the upper triangle of `a` (row-major n × n, symmetric positive definite):
 * R upper triangular with A = R Rᵀ (a Cholesky factorisation that starts from the last
 * column). Returns false when a pivot is not positive and finite (A not positive definite in
 * f64). Blocked by column panels (each row segment is read once per panel, not per column),
 * k-tiled, and four panel columns per pass over a row.
 */
export function reverseCholeskyInPlace(a: Float64Array, n: number): boolean {
  for (let j1 = n; j1 > 0; j1 -= PANEL) {
    const j0 = Math.max(0, j1 - PANEL);
    // Panel update: A[i][j] −= Σ_{k ≥ j1} R[i][k] R[j][k] for j in [j0, j1), i ≤ j.
    for (let k0 = j1; k0 < n; k0 += KTILE) {
      const k1 = Math.min(n, k0 + KTILE);
      for (let i = 0; i < j1; i++) {
        const oi = i * n;
        let j = Math.max(i, j0);
        for (; j + 3 < j1; j += 4) {
          const o0 = j * n;
          const o1 = o0 + n;
          const o2 = o1 + n;
          const o3 = o2 + n;
          let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
          for (let k = k0; k < k1; k++) {
            const x = a[oi + k];
            s0 += x * a[o0 + k];
            s1 += x * a[o1 + k];
            s2 += x * a[o2 + k];
            s3 += x * a[o3 + k];
          }
          a[oi + j] -= s0;
          a[oi + j + 1] -= s1;
          a[oi + j + 2] -= s2;
          a[oi + j + 3] -= s3;
        }
        for (; j < j1; j++) {
          const oj = j * n;
          let s = 0;
          for (let k = k0; k < k1; k++) s += a[oi + k] * a[oj + k];
          a[oi + j] -= s;
        }
      }
    }
    // Inside the panel, last column first.
    for (let j = j1 - 1; j >= j0; j--) {
      const oj = j * n;
      let d = a[oj + j];
      for (let k = j + 1; k < j1; k++) d -= a[oj + k] * a[oj + k];
      if (!(d > 0) || !Number.isFinite(d)) return false;
      const rjj = Math.sqrt(d);
      a[oj + j] = rjj;
      for (let i = 0; i < j; i++) {
        const oi = i * n;
        let s = a[oi + j];
        for (let k = j + 1; k < j1; k++) s -= a[oi + k] * a[oj + k];
        a[oi + j] = s / rjj;
      }
    }
  }
  return true;
}

/**
 * In place on the upper triangle: R (upper, nonzero diagonal) → R⁻¹ (upper). Columns are
 * solved from the last one down (R u_j = e_j by back substitution), so column j can overwrite
 * R's column j: later (smaller) columns only read R[·][k ≤ j′] with j′ < j. Blocks of columns
 * share one pass over each row of R, four at a time.
 */
export function invertUpperInPlace(a: Float64Array, n: number): void {
  const B = PANEL;
  // u[t·n + i] = column (j0 + t) of R⁻¹; rows below the diagonal stay 0, so every column of a
  // block can run its dot products over the same k range (the zeros add nothing).
  const u = new Float64Array(B * n);
  for (let j1 = n; j1 > 0; j1 -= B) {
    const j0 = Math.max(0, j1 - B);
    const nb = j1 - j0;
    u.fill(0);
    // Rows inside the block: only the columns with j ≥ i.
    for (let i = j1 - 1; i >= j0; i--) {
      const oi = i * n;
      const rii = a[oi + i];
      for (let t = i - j0; t < nb; t++) {
        const ut = t * n;
        if (j0 + t === i) {
          u[ut + i] = 1 / rii;
          continue;
        }
        let s = 0;
        for (let k = i + 1; k < j1; k++) s += a[oi + k] * u[ut + k];
        u[ut + i] = -s / rii;
      }
    }
    // Rows above the block: every column of the block.
    for (let i = j0 - 1; i >= 0; i--) {
      const oi = i * n;
      const rii = a[oi + i];
      let t = 0;
      for (; t + 3 < nb; t += 4) {
        const u0 = t * n;
        const u1 = u0 + n;
        const u2 = u1 + n;
        const u3 = u2 + n;
        let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (let k = i + 1; k < j1; k++) {
          const x = a[oi + k];
          s0 += x * u[u0 + k];
          s1 += x * u[u1 + k];
          s2 += x * u[u2 + k];
          s3 += x * u[u3 + k];
        }
        u[u0 + i] = -s0 / rii;
        u[u1 + i] = -s1 / rii;
        u[u2 + i] = -s2 / rii;
        u[u3 + i] = -s3 / rii;
      }
      for (; t < nb; t++) {
        const ut = t * n;
        let s = 0;
        for (let k = i + 1; k < j1; k++) s += a[oi + k] * u[ut + k];
        u[ut + i] = -s / rii;
      }
    }
    for (let t = 0; t < nb; t++) {
      const j = j0 + t;
      const ut = t * n;
      for (let i = 0; i <= j; i++) a[i * n + j] = u[ut + i];
    }
  }
}

/**
 * U upper triangular with H⁻¹ = Uᵀ U (the factor GPTQ's updates use; the reference computes
 * it as cholesky(cholesky_inverse(cholesky(H)), upper=True)). Here: H = R Rᵀ with R upper
 * (Cholesky from the last column), so H⁻¹ = R⁻ᵀ R⁻¹ and U = R⁻¹ — one factorisation and one
 * triangular inverse, no explicit H⁻¹. `diagAdd` is added to H's diagonal first (damping).
 * Returns a new row-major n × n array (lower part 0), or undefined when H is not positive definite.
 */
export function upperCholeskyOfInverse(h: Float64Array, n: number, diagAdd = 0): Float64Array | undefined {
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = i; j < n; j++) a[i * n + j] = h[i * n + j];
  if (diagAdd !== 0) for (let i = 0; i < n; i++) a[i * n + i] += diagAdd;
  if (!reverseCholeskyInPlace(a, n)) return undefined;
  invertUpperInPlace(a, n);
  return a;
}

export interface GptqOptions {
  /** Per-row step the loader recovers (TensorScales.rowStep). */
  rowStep: Float32Array;
  /** fround(1 / rowStep) (TensorScales.rowInv; 0 where the step is 0). */
  rowInv: Float32Array;
  qmin: number;
  qmax: number;
  /** Fraction of the mean diagonal of H added to the diagonal. Default 0.01. */
  damp?: number;
  /** Quantize columns in descending diag(H) order. Default true. */
  actOrder?: boolean;
  /** Columns per lazy block update. Default 128 (does not change the result, only speed). */
  blockSize?: number;
  /** Round every value to f16 (as stored in an F16 bundle). Default false. */
  roundToF16?: boolean;
  /** Tensor name for error messages. */
  name?: string;
  /** Largest relative damping tried before giving up. Default 1 (100 % of the mean diagonal). */
  maxDamp?: number;
  /**
   * Round onto this sorted codebook instead of the integer grid (qmax − qmin + 1 strictly
   * increasing entries, src/core/quant/codebook.ts): each weight goes to the nearest entry of
   * fround(w · rowInv[r]) exactly as the `quantizeToCodebook` kernel picks it, value
   * fround(rowStep[r] · C_k); the code reported is qmin + k.
   */
  codebook?: Float32Array;
}

export interface GptqResult {
  /** Fake-quant values Ŵ (row-major [rows, cols], original column order), each rowStep[r]·q. */
  values: Float32Array;
  /** The integer codes q (Int8Array when the grid fits in 8 bits); with a codebook, qmin + the entry index. */
  codes: Int8Array | Int16Array;
  /** Histogram of the codes: codeCounts[q − qmin]. */
  codeCounts: Uint32Array;
  /** Relative damping finally used (≥ the requested one when retries were needed). */
  dampUsed: number;
  /** Input channels with H_jj = 0 (their weight column was zeroed). */
  deadColumns: number;
  /** Attempts the Cholesky needed (1 = the requested damping sufficed). */
  choleskyAttempts: number;
}

/**
 * What GPTQ fixes on the host before any column update (shared by the CPU loop below and the
 * WebGPU engine, so both quantize in the same order on the same factor): the column order, the
 * dead input channels, and U with H⁻¹ = UᵀU of the permuted, dead-fixed, damped H (f64).
 */
export interface GptqPlan {
  /** perm[i] = the original column quantized i-th. */
  perm: Int32Array;
  /** dead[i] = 1 when permuted column i has H_jj = 0 (its weights are zeroed). */
  dead: Uint8Array;
  /** Upper Cholesky factor of the damped H⁻¹, permuted order, row-major cols × cols (lower part 0). */
  u: Float64Array;
  dampUsed: number;
  deadColumns: number;
  choleskyAttempts: number;
}

/** Checks the inputs of gptqQuantize and computes its GptqPlan (the f64 Cholesky part, on the host). */
export function gptqPlan(w: Float32Array, rows: number, cols: number, h: Float64Array, opts: GptqOptions): GptqPlan {
  const { rowStep, rowInv, qmin, qmax, name } = opts;
  const what = name ? ` (${name})` : '';
  const damp = opts.damp ?? 0.01;
  const actOrder = opts.actOrder ?? true;
  const blockSize = opts.blockSize ?? 128;
  const maxDamp = opts.maxDamp ?? 1;
  if (w.length !== rows * cols) throw new RangeError(`gptqQuantize${what}: ${w.length} weights for [${rows}, ${cols}]`);
  if (h.length !== cols * cols) throw new RangeError(`gptqQuantize${what}: Hessian has ${h.length} entries, expected ${cols}² = ${cols * cols}`);
  if (rowStep.length !== rows || rowInv.length !== rows) throw new RangeError(`gptqQuantize${what}: ${rows} rows need ${rows} row steps and inverses`);
  if (!Number.isInteger(qmin) || !Number.isInteger(qmax) || qmin > 0 || qmax < 0) throw new RangeError(`gptqQuantize${what}: grid [${qmin}, ${qmax}] must hold 0`);
  if (!(damp >= 0) || !Number.isFinite(damp)) throw new RangeError(`gptqQuantize${what}: damp ${damp} must be a finite number ≥ 0`);
  if (!Number.isInteger(blockSize) || blockSize < 1) throw new RangeError(`gptqQuantize${what}: blockSize ${blockSize} must be a positive integer`);
  for (let i = 0; i < w.length; i++) {
    if (!Number.isFinite(w[i])) throw new GptqError(`gptqQuantize${what}: weight [${Math.floor(i / cols)}, ${i % cols}] is ${w[i]}`, name);
  }
  for (let r = 0; r < rows; r++) {
    if (!Number.isFinite(rowStep[r]) || !Number.isFinite(rowInv[r])) throw new GptqError(`gptqQuantize${what}: row ${r} step ${rowStep[r]} / inverse ${rowInv[r]} not finite`, name);
  }
  for (let i = 0; i < h.length; i++) {
    if (!Number.isFinite(h[i])) throw new GptqError(`gptqQuantize${what}: Hessian entry [${Math.floor(i / cols)}, ${i % cols}] is ${h[i]}`, name);
  }
  const entries = opts.codebook;
  if (entries) {
    if (entries.length !== qmax - qmin + 1) throw new RangeError(`gptqQuantize${what}: codebook has ${entries.length} entries; the grid [${qmin}, ${qmax}] needs ${qmax - qmin + 1}`);
    for (let k = 0; k < entries.length; k++) {
      if (!Number.isFinite(entries[k]) || (k > 0 && !(entries[k] > entries[k - 1]))) throw new RangeError(`gptqQuantize${what}: codebook entry ${k} (${entries[k]}) must be finite and above entry ${k - 1}`);
    }
  }

  // Column order: descending diag(H) (ties by index, so the order is deterministic).
  const perm = new Int32Array(cols);
  for (let j = 0; j < cols; j++) perm[j] = j;
  if (actOrder) {
    const diag = Array.from({ length: cols }, (_, j) => h[j * cols + j]);
    perm.sort((a, b) => diag[b] - diag[a] || a - b);
  }

  // Permuted, dead-channel-fixed Hessian (upper triangle is all the factorisation reads).
  const hp = new Float64Array(cols * cols);
  const dead = new Uint8Array(cols);
  let deadColumns = 0;
  let diagSum = 0;
  for (let i = 0; i < cols; i++) {
    const pi = perm[i];
    const hii = h[pi * cols + pi];
    if (hii === 0) { dead[i] = 1; deadColumns++; }
    for (let j = i; j < cols; j++) hp[i * cols + j] = h[pi * cols + perm[j]];
    if (dead[i]) hp[i * cols + i] = 1;
    diagSum += hp[i * cols + i];
  }
  // A dead channel's row of H is zero off the diagonal too when H comes from data (H_jj = Σ x_j²).
  const meanDiag = diagSum / cols;

  // Cholesky of H⁻¹, retrying with more damping like common implementations (×10 per attempt here).
  let u: Float64Array | undefined;
  let dampUsed = damp;
  let attempts = 0;
  const tried: number[] = [];
  for (;;) {
    attempts++;
    tried.push(dampUsed);
    u = upperCholeskyOfInverse(hp, cols, dampUsed * meanDiag);
    if (u) break;
    if (dampUsed >= maxDamp) {
      throw new GptqError(
        `GPTQ${what}: the Hessian [${cols}×${cols}] is not positive definite even with damping ${tried.map((d) => `${d * 100}%`).join(', ')} of its mean diagonal (${meanDiag}); ` +
          'check the calibration inputs of this layer, or use RTN for it',
        name,
      );
    }
    dampUsed = Math.min(dampUsed > 0 ? dampUsed * 10 : 1e-4, maxDamp);
  }
  return { perm, dead, u, dampUsed, deadColumns, choleskyAttempts: attempts };
}

/**
 * Results in permuted column order (valuesP, codesP) back to the original order, with the codes'
 * histogram. `codesP` may be reused by the caller afterwards.
 */
export function gptqUnpermute(
  plan: GptqPlan, valuesP: Float32Array, codesP: Int16Array | Int32Array, rows: number, cols: number, qmin: number, qmax: number,
): Pick<GptqResult, 'values' | 'codes' | 'codeCounts' | 'dampUsed' | 'deadColumns' | 'choleskyAttempts'> {
  const { perm } = plan;
  const values = new Float32Array(rows * cols);
  const small = qmin >= -128 && qmax <= 127;
  const codes = small ? new Int8Array(rows * cols) : new Int16Array(rows * cols);
  const codeCounts = new Uint32Array(qmax - qmin + 1);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    for (let j = 0; j < cols; j++) {
      const q = codesP[o + j];
      values[o + perm[j]] = valuesP[o + j];
      codes[o + perm[j]] = q;
      codeCounts[q - qmin]++;
    }
  }
  return { values, codes, codeCounts, dampUsed: plan.dampUsed, deadColumns: plan.deadColumns, choleskyAttempts: plan.choleskyAttempts };
}

/**
 * GPTQ with fixed row steps. W (row-major [rows, cols], f32) is not modified; H is the
 * [cols, cols] symmetric Hessian of the layer input (any positive scale; not modified).
 */
export function gptqQuantize(w: Float32Array, rows: number, cols: number, h: Float64Array, opts: GptqOptions): GptqResult {
  const plan = gptqPlan(w, rows, cols, h, opts);
  const { rowStep, rowInv, qmin, qmax, name } = opts;
  const what = name ? ` (${name})` : '';
  const blockSize = opts.blockSize ?? 128;
  const f16 = opts.roundToF16 ?? false;
  const { perm, dead, u } = plan;
  const entries = opts.codebook;
  const thresholds = entries ? codebookThresholds(entries) : null;

  // Working copy of W in f64, columns permuted, dead columns zeroed.
  const work = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    for (let j = 0; j < cols; j++) work[o + j] = dead[j] ? 0 : w[o + perm[j]];
  }
  const valuesP = new Float32Array(rows * cols);
  const codesP = new Int16Array(rows * cols);
  const diagU = new Float64Array(cols);
  for (let j = 0; j < cols; j++) diagU[j] = u[j * cols + j];

  // Row groups share each row of U while it is in cache; rows are independent, so the group
  // size changes nothing in the result.
  const G = 16;
  const err = new Float64Array(G * blockSize);
  for (let r0 = 0; r0 < rows; r0 += G) {
    const g = Math.min(G, rows - r0);
    for (let i1 = 0; i1 < cols; i1 += blockSize) {
      const i2 = Math.min(i1 + blockSize, cols);
      // Inside the block, column by column, each row on its own.
      for (let t = 0; t < g; t++) {
        const r = r0 + t;
        const o = r * cols;
        const step = rowStep[r];
        const inv = rowInv[r];
        const eo = t * blockSize;
        for (let i = i1; i < i2; i++) {
          const wf = fround(work[o + i]);
          const x = fround(wf * inv);
          if (!Number.isFinite(x)) throw new GptqError(`GPTQ${what}: weight [${r}, ${perm[i]}] became ${work[o + i]} during the updates`, name);
          let q: number;
          let v: number;
          if (thresholds) {
            const k = nearestEntryIndex(x, thresholds);
            q = qmin + k;
            v = fround(step * entries![k]);
          } else {
            q = x + RNE_MAGIC - RNE_MAGIC;
            if (q === 0) q = x * 0; // keep the sign of zero, as the quantize kernel does
            if (q < qmin) q = qmin;
            else if (q > qmax) q = qmax;
            v = fround(step * q);
          }
          if (f16) v = roundToF16Value(v);
          valuesP[o + i] = v;
          codesP[o + i] = q;
          const e = (work[o + i] - v) / diagU[i];
          err[eo + (i - i1)] = e;
          if (e !== 0) {
            const ui = i * cols;
            for (let j = i + 1; j < i2; j++) work[o + j] -= e * u[ui + j];
          }
        }
      }
      // Lazy update of the columns after the block: the same subtractions, in the same order
      // (i ascending for every element), tiled over j so the rows' tiles stay in cache.
      for (let jt = i2; jt < cols; jt += JTILE) {
        const jEnd = Math.min(cols, jt + JTILE);
        for (let i = i1; i < i2; i++) {
          const ui = i * cols;
          for (let t = 0; t < g; t++) {
            const e = err[t * blockSize + (i - i1)];
            if (e === 0) continue;
            const o = (r0 + t) * cols;
            for (let j = jt; j < jEnd; j++) work[o + j] -= e * u[ui + j];
          }
        }
      }
    }
  }
  return gptqUnpermute(plan, valuesP, codesP, rows, cols, qmin, qmax);
}

export interface OutputError {
  /** ‖(W − Ŵ) X‖ / ‖W X‖ = sqrt(tr(Δ H Δᵀ) / tr(W H Wᵀ)); 0 when the reference is 0. */
  relError: number;
  /** tr(Δ H Δᵀ) with Δ = W − Ŵ. */
  errorEnergy: number;
  /** tr(W H Wᵀ). */
  referenceEnergy: number;
}

/**
 * Output error of a quantized linear on the calibration data, from its Hessian alone (no X):
 * ‖(W − Ŵ) X‖_F² = tr((W − Ŵ) XᵀX (W − Ŵ)ᵀ), and the common factor of H cancels in the ratio.
 * Sums run in f64 in a fixed order.
 */
export function outputError(w: Float32Array, wq: Float32Array, rows: number, cols: number, h: Float64Array): OutputError {
  if (w.length !== rows * cols || wq.length !== rows * cols) throw new RangeError(`outputError: matrices must hold ${rows}×${cols} values`);
  if (h.length !== cols * cols) throw new RangeError(`outputError: Hessian must be ${cols}×${cols}`);
  const G = 16;
  const dlt = new Float64Array(G * cols);
  const ref = new Float64Array(G * cols);
  let errorEnergy = 0;
  let referenceEnergy = 0;
  for (let r0 = 0; r0 < rows; r0 += G) {
    const g = Math.min(G, rows - r0);
    for (let t = 0; t < g; t++) {
      const o = (r0 + t) * cols;
      for (let j = 0; j < cols; j++) {
        ref[t * cols + j] = w[o + j];
        dlt[t * cols + j] = w[o + j] - wq[o + j];
      }
    }
    for (let i = 0; i < cols; i++) {
      const hi = i * cols;
      for (let t = 0; t < g; t++) {
        const od = t * cols;
        let sd = 0;
        let sr = 0;
        for (let j = 0; j < cols; j++) {
          const hij = h[hi + j];
          sd += hij * dlt[od + j];
          sr += hij * ref[od + j];
        }
        errorEnergy += dlt[od + i] * sd;
        referenceEnergy += ref[od + i] * sr;
      }
    }
  }
  const relError = referenceEnergy > 0 ? Math.sqrt(Math.max(0, errorEnergy) / referenceEnergy) : 0;
  return { relError, errorEnergy, referenceEnergy };
}
