import type { Backend, Mat } from '../ports';
import { fitCodebook, uniformCodebook } from '../quant/codebook';
import { errorStatsFromRows, type ErrorStats } from '../quant/metrics';
import { chooseScales, gridFor, type TensorScales } from '../quant/scales';
import type { QuantChoice } from '../qwen2/plan';
import { decodeToF32 } from '../safetensors/dtype';

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
  const rtn: QuantChoice = { ...choice, method: 'rtn', codebook: 'uniform' };
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
