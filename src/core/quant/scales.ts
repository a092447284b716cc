import type { Backend, Mat } from '../ports';
import type { Bits, Clip, Scheme } from '../settings';
import { roundToF16 } from '../safetensors/dtype';

/** The symmetric integer grid of a bit width: Q ∈ [qmin, qmax], qmax = 2^(b−1) − 1. */
export function gridFor(bits: Bits): { qmin: number; qmax: number } {
  const qmax = 2 ** (bits - 1) - 1;
  return { qmin: -qmax - 1, qmax };
}

/**
 * MSE clip search, coarse to fine. Stage 1 tries α = 0.20, 0.24, …, 1.00 (21 values) times the
 * absmax step; stage 2 refines around each row's (or the tensor's) best with ρ = 0.96 … 1.04 in
 * steps of 0.01 (9 values): 30 evaluations resolve α to ~1 % over [0.19, 1.04], like a dense
 * 80-value grid (SPEC §3) at 3× less work. Inverses are precomputed on the host so no backend
 * ever divides (GPU division is not correctly rounded; multiplication is).
 */
export const MSE_ALPHAS: Float32Array = Float32Array.from({ length: 21 }, (_, k) => 0.2 + 0.04 * k);
export const MSE_INV_ALPHAS: Float32Array = MSE_ALPHAS.map((a) => 1 / a);
export const MSE_REFINE: Float32Array = Float32Array.from({ length: 9 }, (_, j) => 0.96 + 0.01 * j);
export const MSE_INV_REFINE: Float32Array = MSE_REFINE.map((a) => 1 / a);

/** What is stored for one quantized tensor and how its rows were stepped. */
export interface TensorScales {
  /** F16-representable value of every `input_scales` entry (one value: per-tensor or SP factor c). */
  inputScale: number;
  /**
   * Fitted per-column `input_scales` (F16 values, fp16(c · s_j)); absent = every entry `inputScale`.
   * With them `rowStep`/`rowInv` are the steps of W·diag(1/s), and the loader's step of weight
   * [r, j] is fp16(inputScales[j] · outputScales[r]).
   */
  inputScales?: Float32Array;
  /** F16-representable `output_scales`, one per row. */
  outputScales: Float32Array;
  /** Effective per-row step the loader recovers: fp16(input_scale · output_scale_r). */
  rowStep: Float32Array;
  /** fround(1 / rowStep) (0 where rowStep is 0). */
  rowInv: Float32Array;
  /** Chosen clip ratio per row (equal across rows for per_tensor); 1 for absmax. */
  alphas: Float32Array;
}

const F16_MIN_SUBNORMAL = 2 ** -24;

/** One MSE stage's candidates: the per-row SSE of each is asked of the matrix (rows × alphas.length). */
export interface MseStage {
  rowBase: Float32Array;
  rowInvBase: Float32Array;
  alphas: Float32Array;
  invAlphas: Float32Array;
  qmin: number;
  qmax: number;
}

/**
 * The scale choice from streamed statistics: built from the per-row absmax, it asks for at most
 * two MSE stages (the per-row SSE of each candidate, which a caller may compute tile by tile
 * over row ranges and put together in row order) and then lays the scales out. Exactly the f32
 * (and host f64) arithmetic of `chooseScales`, which is this chooser run on a whole matrix.
 */
export class ScaleChooser {
  private readonly rows: number;
  private readonly qmin: number;
  private readonly qmax: number;
  private readonly rowBase: Float32Array;
  private readonly rowInvBase: Float32Array;
  private readonly delta: Float64Array;
  private readonly alphas: Float32Array;
  private coarse: Int32Array | null = null;
  private base2: Float32Array | null = null;
  private invBase2: Float32Array | null = null;
  private stageIndex: number;

  constructor(rowAbsMax: Float32Array, bits: Bits, private readonly scheme: Scheme, clip: Clip) {
    const { qmin, qmax } = gridFor(bits);
    this.qmin = qmin;
    this.qmax = qmax;
    const rows = (this.rows = rowAbsMax.length);
    let tensorMax = 0;
    for (let r = 0; r < rows; r++) if (rowAbsMax[r] > tensorMax) tensorMax = rowAbsMax[r];
    // The range each row's step is based on: its own max (sp) or the tensor's (per_tensor).
    const rowRange = scheme === 'sp' ? rowAbsMax : new Float32Array(rows).fill(tensorMax);
    this.rowBase = new Float32Array(rows);
    this.rowInvBase = new Float32Array(rows);
    for (let r = 0; r < rows; r++) {
      const mr = rowRange[r];
      this.rowBase[r] = mr / qmax;
      this.rowInvBase[r] = mr > 0 ? qmax / mr : 0;
    }
    // Per row: the step and its inverse (the same for every row with per_tensor), and α chosen.
    this.delta = new Float64Array(rows);
    this.alphas = new Float32Array(rows).fill(1);
    for (let r = 0; r < rows; r++) this.delta[r] = this.rowBase[r];
    this.stageIndex = clip === 'mse' && tensorMax > 0 ? 0 : 2;
  }

  /** The next MSE stage to evaluate, or null once the scales are known. */
  next(): MseStage | null {
    const { qmin, qmax } = this;
    if (this.stageIndex === 0) return { rowBase: this.rowBase, rowInvBase: this.rowInvBase, alphas: MSE_ALPHAS, invAlphas: MSE_INV_ALPHAS, qmin, qmax };
    if (this.stageIndex === 1) return { rowBase: this.base2!, rowInvBase: this.invBase2!, alphas: MSE_REFINE, invAlphas: MSE_INV_REFINE, qmin, qmax };
    return null;
  }

  /** The per-row SSE (rows × N, row-major) of the stage `next()` gave. */
  submit(sse: Float32Array): void {
    const rows = this.rows;
    const stage = this.next();
    if (!stage) throw new Error('ScaleChooser.submit: no MSE stage is pending');
    const n = stage.alphas.length;
    if (sse.length !== rows * n) throw new Error(`ScaleChooser.submit: ${sse.length} errors, expected ${rows} rows × ${n}`);
    const pick = new Int32Array(rows);
    if (this.scheme === 'sp') {
      for (let r = 0; r < rows; r++) pick[r] = argminFromTop(sse, r * n, n);
    } else {
      // Per-tensor totals: row sums added in row order in f64 on the host (identical on every backend).
      const totals = new Float64Array(n);
      for (let r = 0; r < rows; r++) for (let k = 0; k < n; k++) totals[k] += sse[r * n + k];
      pick.fill(argminFromTop(totals, 0, n));
    }
    if (this.stageIndex === 0) {
      this.coarse = pick;
      this.base2 = new Float32Array(rows);
      this.invBase2 = new Float32Array(rows);
      for (let r = 0; r < rows; r++) {
        this.base2[r] = this.rowBase[r] * MSE_ALPHAS[pick[r]];
        this.invBase2[r] = this.rowInvBase[r] * MSE_INV_ALPHAS[pick[r]];
      }
    } else {
      for (let r = 0; r < rows; r++) {
        this.delta[r] = Math.fround(this.base2![r] * MSE_REFINE[pick[r]]);
        this.alphas[r] = MSE_ALPHAS[this.coarse![r]] * MSE_REFINE[pick[r]];
      }
    }
    this.stageIndex++;
  }

  /** The scales, laid out as ANEMLL's input/output scales per FORMAT.md ("Where the scales go"). */
  result(): TensorScales {
    if (this.next()) throw new Error('ScaleChooser.result: an MSE stage is still pending');
    const { rows, delta } = this;
    const outputScales = new Float32Array(rows);
    let inputScale: number;
    if (this.scheme === 'per_tensor') {
      // Δ in input_scales, output_scales = 1 (FORMAT.md: keeps the loader's raw outputs near true size).
      inputScale = delta[0] > 0 ? roundToF16(Math.max(delta[0], F16_MIN_SUBNORMAL)) : 1;
      outputScales.fill(1);
    } else {
      // SP: c = geometric mean of the nonzero row steps in input_scales, Δ_r / c in output_scales.
      let logSum = 0;
      let count = 0;
      for (let r = 0; r < rows; r++) if (delta[r] > 0) { logSum += Math.log(delta[r]); count++; }
      inputScale = count > 0 ? roundToF16(Math.max(Math.exp(logSum / count), F16_MIN_SUBNORMAL)) : 1;
      for (let r = 0; r < rows; r++) {
        outputScales[r] = delta[r] > 0 ? roundToF16(Math.max(delta[r] / inputScale, F16_MIN_SUBNORMAL)) : 1;
      }
    }
    const rowStep = new Float32Array(rows);
    const rowInv = new Float32Array(rows);
    for (let r = 0; r < rows; r++) {
      // The loader divides by fp16(s_in · s_out): quantize on exactly that step.
      const step = roundToF16(Math.fround(inputScale * outputScales[r]));
      rowStep[r] = step;
      rowInv[r] = step > 0 ? 1 / step : 0;
    }
    return { inputScale, outputScales, rowStep, rowInv, alphas: this.alphas };
  }
}

/**
 * Choose quantization steps for a matrix already on the backend (after any rotation):
 * absmax or MSE-optimal clip, per tensor or per row (SP), then lay them out as ANEMLL's
 * input/output scales per FORMAT.md ("Where the scales go").
 */
export async function chooseScales(
  backend: Backend,
  m: Mat,
  rowAbsMax: Float32Array,
  bits: Bits,
  scheme: Scheme,
  clip: Clip,
): Promise<TensorScales> {
  const chooser = new ScaleChooser(rowAbsMax, bits, scheme, clip);
  for (let st = chooser.next(); st; st = chooser.next()) {
    chooser.submit(await backend.mseRowErrors(m, st.rowBase, st.rowInvBase, st.alphas, st.invAlphas, st.qmin, st.qmax));
  }
  return chooser.result();
}

/** Index of the smallest value; on ties the larger α (higher index) wins. */
function argminFromTop(values: ArrayLike<number>, offset: number, n: number): number {
  let best = n - 1;
  let bestValue = values[offset + n - 1];
  for (let k = n - 2; k >= 0; k--) {
    const v = values[offset + k];
    if (v < bestValue) { bestValue = v; best = k; }
  }
  return best;
}

/** How `input_scales` is chosen: one value per tensor, or a scale per input column fitted to the tensor. */
export type InputScalesKind = 'uniform' | 'fitted';

/**
 * Candidate exponents of the fitted column scale s_j = a_j^α · d_j^(−β) (a_j: the column's absmax,
 * d_j: its importance, the Hessian diagonal on calibration data). Quarter/eighth powers only, so
 * every candidate is made of sqrt, × and ÷ — correctly rounded, the same bits in every JS engine.
 */
export const INPUT_SCALE_ALPHAS = [0, 0.25, 0.5, 0.75, 1] as const;
export const INPUT_SCALE_BETAS = [0, 0.125, 0.25, 0.375, 0.5] as const;
/** Clip ratios of the per-row step in the fitting proxy (the final steps come from chooseScales). */
export const INPUT_SCALE_PROXY_CLIPS = [1, 0.9, 0.8, 0.7, 0.6, 0.5] as const;
/** Alternating least-squares refinements of s after the grid search (each kept only if it lowers the proxy). */
export const INPUT_SCALE_REFINEMENTS = 4;
/**
 * The fit scores at most this many rows (evenly strided, deterministic): s is shared by all rows,
 * so a sample estimates it well, and a 4864-row MLP tensor then costs what a 512-row one does.
 */
export const INPUT_SCALE_FIT_ROWS = 512;
/** s_j is normalised to median 1 and kept within [1/16, 16] (fp16 range of the stored scales). */
export const INPUT_SCALE_RANGE = 16;

export interface InputScaleFit {
  /** s_j per input column: F16 values, median 1, within [1/16, 16]. */
  scales: Float32Array;
  /** The grid point chosen (0, 0 = uniform) and how many ALS refinements were kept. */
  alpha: number;
  beta: number;
  refinements: number;
  /** The proxy Σ_r Σ_j d_j (W − Ŵ)² of the fit and of uniform scales (s = 1). */
  proxyError: number;
  uniformProxyError: number;
}

const RNE = 6755399441055744;
const root = (x: number, p: number): number => {
  // x^p for p in {0, 1/8, 1/4, 3/8, 1/2, 3/4, 1}, from square roots only.
  if (p === 0) return 1;
  if (p === 1) return x;
  const r2 = Math.sqrt(x);
  const r4 = Math.sqrt(r2);
  if (p === 0.5) return r2;
  if (p === 0.25) return r4;
  if (p === 0.75) return r2 * r4;
  const r8 = Math.sqrt(r4);
  if (p === 0.125) return r8;
  if (p === 0.375) return r4 * r8;
  throw new RangeError(`root: exponent ${p} is not a supported power`);
};

/** Median 1, clamped to [1/R, R], rounded to F16 (in place on a copy). */
function normaliseScales(s: Float64Array): Float32Array {
  const sorted = Float64Array.from(s).sort();
  const n = sorted.length;
  const med = n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  const out = new Float32Array(n);
  for (let j = 0; j < n; j++) {
    let v = med > 0 && Number.isFinite(s[j]) && s[j] > 0 ? s[j] / med : 1;
    if (v > INPUT_SCALE_RANGE) v = INPUT_SCALE_RANGE;
    else if (v < 1 / INPUT_SCALE_RANGE) v = 1 / INPUT_SCALE_RANGE;
    out[j] = roundToF16(v);
  }
  return out;
}

/**
 * The fitting proxy: per row, RTN of W·diag(1/s) on the grid with the best of a few clipped
 * absmax steps; Σ d_j (W_rj − s_j Δ_r q_rj)² over the tensor (f64, fixed order). Fills `steps`
 * and `codes` (q per weight) when given.
 */
function proxyError(
  w: Float32Array, rows: number, cols: number, s: Float32Array, d: Float64Array | null, qmin: number, qmax: number,
  steps?: Float64Array, codes?: Int16Array,
): number {
  const x = new Float64Array(cols);
  let total = 0;
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let m = 0;
    for (let j = 0; j < cols; j++) {
      const v = w[o + j] / s[j];
      x[j] = v;
      const a = v < 0 ? -v : v;
      if (a > m) m = a;
    }
    if (m === 0) {
      if (steps) steps[r] = 0;
      if (codes) codes.fill(0, o, o + cols);
      continue;
    }
    let best = Infinity;
    let bestStep = 0;
    for (const rho of INPUT_SCALE_PROXY_CLIPS) {
      const step = (rho * m) / qmax;
      const inv = 1 / step;
      let e = 0;
      for (let j = 0; j < cols; j++) {
        let q = x[j] * inv + RNE - RNE;
        if (q < qmin) q = qmin;
        else if (q > qmax) q = qmax;
        const diff = (x[j] - step * q) * s[j];
        e += (d ? d[j] : 1) * diff * diff;
      }
      if (e < best) { best = e; bestStep = step; }
    }
    total += best;
    if (steps) steps[r] = bestStep;
    if (codes) {
      const inv = 1 / bestStep;
      for (let j = 0; j < cols; j++) {
        let q = x[j] * inv + RNE - RNE;
        if (q < qmin) q = qmin;
        else if (q > qmax) q = qmax;
        codes[o + j] = q;
      }
    }
  }
  return total;
}

/**
 * Per-input-column scales s for W ≈ (s_out s_inᵀ) ⊙ C[codes], fitted to one tensor (row-major
 * [rows, cols], after any rotation), deterministically:
 *  1. a grid over s_j = a_j^α · d_j^(−β) (a_j = max_r |W_rj|: column balancing; d_j = H_jj when
 *     calibration is given: an important input gets a finer step — AWQ's idea, in the scales
 *     instead of the weights; without calibration d = 1 and only α varies), each normalised to
 *     median 1, scored by the proxy Σ d_j (W − Ŵ)² of RTN with per-row clipped steps;
 *     α = β = 0 (uniform) is a candidate, so the fit never scores worse than uniform scales;
 *  2. alternating updates: with the codes q and row steps Δ of the best s, the least-squares
 *     column scale s_j = Σ_r W_rj Δ_r q_rj / Σ_r (Δ_r q_rj)², re-rounded; kept while the proxy drops.
 * Everything is +, ×, ÷ and sqrt in f64 in a fixed order (same bits on every backend and engine).
 * Tensors with more than INPUT_SCALE_FIT_ROWS rows are fitted on that many evenly strided rows.
 */
export function fitInputScales(w: Float32Array, rows: number, cols: number, bits: 4 | 8, importance?: ArrayLike<number>): InputScaleFit {
  if (w.length !== rows * cols) throw new RangeError(`fitInputScales: ${w.length} weights for ${rows}×${cols}`);
  if (importance && importance.length !== cols) throw new RangeError(`fitInputScales: ${importance.length} importances for ${cols} columns`);
  const { qmin, qmax } = gridFor(bits);
  if (rows > INPUT_SCALE_FIT_ROWS) {
    // Rows floor(k · rows / N), k = 0 … N−1 (integer arithmetic, the same rows everywhere).
    const n = INPUT_SCALE_FIT_ROWS;
    const sample = new Float32Array(n * cols);
    for (let k = 0; k < n; k++) {
      const r = Math.floor((k * rows) / n);
      sample.set(w.subarray(r * cols, (r + 1) * cols), k * cols);
    }
    w = sample;
    rows = n;
  }
  const a = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    for (let j = 0; j < cols; j++) {
      const v = Math.abs(w[o + j]);
      if (v > a[j]) a[j] = v;
    }
  }
  let aMax = 0;
  for (let j = 0; j < cols; j++) if (a[j] > aMax) aMax = a[j];
  // Columns without weight or importance get floors instead of 0 (their scale then hits the clamp).
  for (let j = 0; j < cols; j++) if (!(a[j] > 1e-8 * aMax)) a[j] = aMax > 0 ? 1e-8 * aMax : 1;
  let d: Float64Array | null = null;
  if (importance) {
    d = new Float64Array(cols);
    let mean = 0;
    for (let j = 0; j < cols; j++) {
      const v = Number(importance[j]);
      if (!Number.isFinite(v) || v < 0) throw new RangeError(`fitInputScales: importance[${j}] = ${v} must be finite and ≥ 0`);
      d[j] = v;
      mean += v;
    }
    mean /= cols;
    for (let j = 0; j < cols; j++) if (!(d[j] > 1e-8 * mean)) d[j] = mean > 0 ? 1e-8 * mean : 1;
  }
  const ones = new Float32Array(cols).fill(1);
  const uniformProxyError = proxyError(w, rows, cols, ones, d, qmin, qmax);
  let best: { scales: Float32Array; alpha: number; beta: number; err: number } = { scales: ones, alpha: 0, beta: 0, err: uniformProxyError };
  const betas = d ? INPUT_SCALE_BETAS : [0];
  const raw = new Float64Array(cols);
  for (const alpha of INPUT_SCALE_ALPHAS) {
    for (const beta of betas) {
      if (alpha === 0 && beta === 0) continue;
      for (let j = 0; j < cols; j++) raw[j] = root(a[j], alpha) / (d ? root(d[j], beta) : 1);
      const s = normaliseScales(raw);
      const err = proxyError(w, rows, cols, s, d, qmin, qmax);
      if (err < best.err) best = { scales: s, alpha, beta, err };
    }
  }
  // Alternating least squares: codes and row steps for s, then the best s for those codes.
  let refinements = 0;
  const steps = new Float64Array(rows);
  const codes = new Int16Array(rows * cols);
  const num = new Float64Array(cols);
  const den = new Float64Array(cols);
  for (let it = 0; it < INPUT_SCALE_REFINEMENTS; it++) {
    proxyError(w, rows, cols, best.scales, d, qmin, qmax, steps, codes);
    num.fill(0);
    den.fill(0);
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      const step = steps[r];
      for (let j = 0; j < cols; j++) {
        const t = step * codes[o + j];
        num[j] += w[o + j] * t;
        den[j] += t * t;
      }
    }
    for (let j = 0; j < cols; j++) raw[j] = den[j] > 0 && num[j] > 0 ? num[j] / den[j] : best.scales[j];
    const s = normaliseScales(raw);
    const err = proxyError(w, rows, cols, s, d, qmin, qmax);
    if (!(err < best.err)) break;
    best = { ...best, scales: s, err };
    refinements++;
  }
  return { scales: best.scales, alpha: best.alpha, beta: best.beta, refinements, proxyError: best.err, uniformProxyError };
}

/** The loader's step of weight [r, j] with per-column input scales: fp16(fround(s_in_j · s_out_r)). */
export function elementStep(inputScale: number, outputScale: number): number {
  return roundToF16(Math.fround(inputScale * outputScale));
}
