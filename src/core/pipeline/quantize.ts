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

/** The honest baseline: plain RTN of the original, unfused weights on the integer grid, same scheme and clip. */
export async function baselineError(backend: Backend, w0: Mat, rowAbsMax0: Float32Array, choice: QuantChoice, roundToF16: boolean): Promise<ErrorStats> {
  const rtn: QuantChoice = { ...choice, method: 'rtn', codebook: 'uniform' };
  const q = await quantizeMatrix(backend, w0, rowAbsMax0, rtn, roundToF16);
  try {
    return await quantizationError(backend, w0, q.mat);
  } finally {
    backend.release(q.mat);
  }
}
