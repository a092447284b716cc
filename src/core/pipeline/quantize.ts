import type { Backend, Mat } from '../ports';
import type { GptqEngine } from '../ports';
import { codebookThresholds, fitCodebook, nearestEntryIndex, uniformCodebook } from '../quant/codebook';
import { errorStatsFromRows, type ErrorStats } from '../quant/metrics';
import { chooseScales, elementStep, fitInputScales, gridFor, type InputScaleFit, type TensorScales } from '../quant/scales';
import type { QuantChoice } from '../qwen2/plan';
import { decodeToF32, encodeF32, roundToF16 as roundToF16Value } from '../safetensors/dtype';

export interface QuantizedMatrix {
  /** Fake-quant values (F16-rounded when the bundle is F16). */
  mat: Mat;
  codeCounts: Uint32Array;
  scales: TensorScales;
  qmin: number;
  qmax: number;
  /** The `.codebook` written: the integer grid qmin…qmax, or the fitted entries (sorted, F16). */
  codebook: Float32Array;
}

/**
 * 2^b entries fitted to W/(s_in·s_out) (Hessian-diagonal-weighted Lloyd when `columnWeights` is
 * given), F16, spaced so ANEMLL's fp16 de-fuse snaps every stored weight back to its own entry.
 */
export function learnCodebook(host: Float32Array, rows: number, cols: number, scales: TensorScales, bits: 4 | 8, columnWeights: ArrayLike<number> | undefined, name: string): Float32Array {
  return fitCodebook(host, rows, cols, { bits, rowStep: scales.rowStep, rowInv: scales.rowInv, columnWeights, name }).entries;
}

/**
 * Scales chosen exactly as RTN chooses them, then round-to-nearest onto the grid — or, for a
 * learned codebook, onto the nearest fitted entry (scaled by the row step).
 */
export async function quantizeMatrix(
  backend: Backend, w: Mat, rowAbsMax: Float32Array, choice: QuantChoice, roundToF16: boolean,
  opts: { columnWeights?: ArrayLike<number>; name?: string } = {},
): Promise<QuantizedMatrix> {
  if (choice.method !== 'rtn') throw new Error(`quantization ${choice.method} needs calibration data; this run has none`);
  if (choice.inputScales === 'fitted') {
    const host = decodeToF32(await backend.read(w, 'F32'), 'F32');
    return quantizeWithInputScales(backend, host, w.rows, w.cols, choice, roundToF16, { name: opts.name ?? 'tensor' });
  }
  const { qmin, qmax } = gridFor(choice.bits);
  const scales = await chooseScales(backend, w, rowAbsMax, choice.bits, choice.scheme, choice.clip);
  if (choice.codebook === 'learned') {
    const host = decodeToF32(await backend.read(w, 'F32'), 'F32');
    const codebook = learnCodebook(host, w.rows, w.cols, scales, choice.bits, opts.columnWeights, opts.name ?? 'tensor');
    const q = await backend.quantizeToCodebook(w, scales.rowStep, scales.rowInv, codebook, roundToF16);
    return { mat: q.mat, codeCounts: q.codeCounts, scales, qmin, qmax, codebook };
  }
  const q = await backend.quantize(w, scales.rowStep, scales.rowInv, qmin, qmax, roundToF16);
  return { mat: q.mat, codeCounts: q.codeCounts, scales, qmin, qmax, codebook: uniformCodebook(choice.bits) };
}

/** Relative error ‖W − Ŵ‖/‖W‖ and SQNR of a quantized matrix against its f32 source. */
export async function quantizationError(backend: Backend, w: Mat, q: Mat): Promise<ErrorStats> {
  const e = await backend.rowSquaredErrors(w, q);
  return errorStatsFromRows(e.diff, e.ref);
}

/**
 * Matrices above this many elements get their plain-RTN baseline from sampled rows (on backends
 * with `takeRows`): the baseline is a report-only figure, and computing it on every row doubled
 * the MSE search's work (issue 14).
 */
export const BASELINE_SAMPLE_ELEMENTS = 1 << 20;

/**
 * The rows the baseline of a rows×cols matrix is estimated from, or null for all of them: every
 * s-th row (s = ⌈rows·cols / BASELINE_SAMPLE_ELEMENTS⌉, so about that many elements) plus the row
 * holding the matrix's absmax, so a per-tensor step is the whole matrix's.
 */
export function baselineSampleRows(rows: number, cols: number, rowAbsMax: Float32Array): Int32Array | null {
  if (rows * cols <= BASELINE_SAMPLE_ELEMENTS || rows < 2) return null;
  const stride = Math.ceil((rows * cols) / BASELINE_SAMPLE_ELEMENTS);
  let top = 0;
  for (let r = 1; r < rows; r++) if (rowAbsMax[r] > rowAbsMax[top]) top = r;
  const picked: number[] = [];
  for (let r = 0; r < rows; r += stride) {
    if (top > r - stride && top < r) picked.push(top);
    picked.push(r);
  }
  if (top > picked[picked.length - 1]) picked.push(top);
  return Int32Array.from(picked);
}

/**
 * The honest baseline: plain RTN of the original, unfused weights on the integer grid, same
 * scheme and clip — on sampled rows for large matrices where the backend can take rows
 * (`sampled` says how many), else on all of them.
 */
export async function baselineError(backend: Backend, w0: Mat, rowAbsMax0: Float32Array, choice: QuantChoice, roundToF16: boolean): Promise<ErrorStats> {
  const rtn: QuantChoice = { ...choice, method: 'rtn', codebook: 'uniform', inputScales: 'uniform' };
  const pick = backend.takeRows ? baselineSampleRows(w0.rows, w0.cols, rowAbsMax0) : null;
  const w = pick ? await backend.takeRows!(w0, pick) : w0;
  try {
    const rowMax = pick ? Float32Array.from(pick, (r) => rowAbsMax0[r]) : rowAbsMax0;
    const q = await quantizeMatrix(backend, w, rowMax, rtn, roundToF16);
    try {
      const e = await quantizationError(backend, w, q.mat);
      return pick ? { ...e, sampled: { rows: pick.length, of: w0.rows } } : e;
    } finally {
      backend.release(q.mat);
    }
  } finally {
    if (w !== w0) backend.release(w);
  }
}

export interface FittedQuantizedMatrix extends QuantizedMatrix {
  /** The values written (row-major f32; F16-rounded when the bundle is F16). */
  values: Float32Array;
  fit: InputScaleFit;
  gptq?: { dampUsed: number; deadColumns: number };
}

/**
 * Quantization with fitted per-input-column scales (choice.inputScales 'fitted'), on the host copy
 * `host` of the (transformed) weights:
 *  1. s = fitInputScales (importance: the Hessian diagonal when `hessian` is given);
 *  2. W' = W·diag(1/s) through the existing per-row path: chooseScales (absmax or MSE clip, SP or
 *     per-tensor) on the backend, the codebook (learned: fitted to W' with diag(H') weights), then
 *     RTN onto it on the host, or GPTQ on W' with H' = diag(s) H diag(s) — the same loss, since
 *     (W − Ŵ) H (W − Ŵ)ᵀ = (W' − Ŵ') H' (W' − Ŵ')ᵀ;
 *  3. stored: input_scales_j = fp16(c · s_j), output_scales as chosen for W', and each weight
 *     fp16(step_rj · C[code]) with the loader's own step_rj = fp16(input_scales_j · output_scales_r),
 *     so ANEMLL's fp16 de-fuse snaps it back to its entry.
 * Everything after chooseScales runs on the host (GPTQ in the backend's engine), so RTN gives the
 * same bytes on every backend.
 */
export async function quantizeWithInputScales(
  backend: Backend, host: Float32Array, rows: number, cols: number, choice: QuantChoice, roundToF16: boolean,
  opts: { name: string; hessian?: Float64Array; gptq?: { engine: GptqEngine; damp: number; actOrder: boolean } },
): Promise<FittedQuantizedMatrix> {
  const { qmin, qmax } = gridFor(choice.bits);
  const h = opts.hessian;
  const diag = h ? Float64Array.from({ length: cols }, (_, j) => h[j * cols + j]) : undefined;
  const fit = fitInputScales(host, rows, cols, choice.bits, diag);
  const s = fit.scales;
  const wp = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    for (let j = 0; j < cols; j++) wp[o + j] = host[o + j] / s[j];
  }
  const wpMat = await backend.upload(encodeF32(wp), 'F32', rows, cols);
  let scales: TensorScales;
  try {
    scales = await chooseScales(backend, wpMat, await backend.rowAbsMax(wpMat), choice.bits, choice.scheme, choice.clip);
  } finally {
    backend.release(wpMat);
  }
  const inputScales = new Float32Array(cols);
  for (let j = 0; j < cols; j++) inputScales[j] = roundToF16Value(Math.max(Math.fround(scales.inputScale * s[j]), 2 ** -24));
  const diagP = diag ? Float64Array.from(diag, (v, j) => v * s[j] * s[j]) : undefined;
  const codebook = choice.codebook === 'learned'
    ? learnCodebook(wp, rows, cols, scales, choice.bits, diagP, opts.name)
    : uniformCodebook(choice.bits);
  let codes: Int8Array | Int16Array;
  let gptq: FittedQuantizedMatrix['gptq'];
  if (choice.method === 'gptq') {
    if (!h || !opts.gptq) throw new Error(`quantization gptq of ${opts.name} needs calibration data; this run has none`);
    const hp = new Float64Array(cols * cols);
    for (let i = 0; i < cols; i++) for (let j = 0; j < cols; j++) hp[i * cols + j] = h[i * cols + j] * s[i] * s[j];
    const r = await opts.gptq.engine.quantize(wp, rows, cols, hp, {
      rowStep: scales.rowStep, rowInv: scales.rowInv, qmin, qmax, damp: opts.gptq.damp, actOrder: opts.gptq.actOrder,
      roundToF16: false, name: opts.name, ...(choice.codebook === 'learned' ? { codebook } : {}),
    });
    codes = r.codes;
    gptq = { dampUsed: r.dampUsed, deadColumns: r.deadColumns };
  } else {
    // RTN as the quantize / quantizeToCodebook kernels round: fround(fround(w') · rowInv[r]).
    codes = new Int16Array(rows * cols);
    const thresholds = choice.codebook === 'learned' ? codebookThresholds(codebook) : null;
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      const inv = scales.rowInv[r];
      for (let j = 0; j < cols; j++) {
        const x = Math.fround(wp[o + j] * inv);
        let q: number;
        if (thresholds) q = qmin + nearestEntryIndex(x, thresholds);
        else {
          q = x + RNE - RNE;
          if (q < qmin) q = qmin;
          else if (q > qmax) q = qmax;
        }
        codes[o + j] = q;
      }
    }
  }
  const values = new Float32Array(rows * cols);
  const codeCounts = new Uint32Array(qmax - qmin + 1);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    const so = scales.outputScales[r];
    for (let j = 0; j < cols; j++) {
      const k = codes[o + j] - qmin;
      codeCounts[k]++;
      let v = Math.fround(elementStep(inputScales[j], so) * codebook[k]);
      if (roundToF16) v = roundToF16Value(v);
      values[o + j] = v;
    }
  }
  const mat = await backend.upload(encodeF32(values), 'F32', rows, cols);
  return { mat, codeCounts, scales: { ...scales, inputScales }, qmin, qmax, codebook, values, fit, ...(gptq ? { gptq } : {}) };
}

const RNE = 6755399441055744;
