import type { Backend, Mat } from '../ports';
import { errorStatsFromRows, type ErrorStats } from '../quant/metrics';
import { chooseScales, gridFor, type TensorScales } from '../quant/scales';
import type { QuantChoice } from '../qwen2/plan';

export interface QuantizedMatrix {
  /** Fake-quant values (F16-rounded when the bundle is F16). */
  mat: Mat;
  codeCounts: Uint32Array;
  scales: TensorScales;
  qmin: number;
  qmax: number;
}

/** Scales chosen exactly as RTN chooses them, then round-to-nearest onto the grid. */
export async function quantizeMatrix(backend: Backend, w: Mat, rowAbsMax: Float32Array, choice: QuantChoice, roundToF16: boolean): Promise<QuantizedMatrix> {
  if (choice.method !== 'rtn' || choice.codebook !== 'uniform') {
    throw new Error(`quantization ${choice.method}/${choice.codebook} needs calibration data; this run has none`);
  }
  const { qmin, qmax } = gridFor(choice.bits);
  const scales = await chooseScales(backend, w, rowAbsMax, choice.bits, choice.scheme, choice.clip);
  const q = await backend.quantize(w, scales.rowStep, scales.rowInv, qmin, qmax, roundToF16);
  return { mat: q.mat, codeCounts: q.codeCounts, scales, qmin, qmax };
}

/** Relative error ‖W − Ŵ‖/‖W‖ and SQNR of a quantized matrix against its f32 source. */
export async function quantizationError(backend: Backend, w: Mat, q: Mat): Promise<ErrorStats> {
  const e = await backend.rowSquaredErrors(w, q);
  return errorStatsFromRows(e.diff, e.ref);
}

/** The honest baseline: plain RTN of the original, unfused weights with the same choice. */
export async function baselineError(backend: Backend, w0: Mat, rowAbsMax0: Float32Array, choice: QuantChoice, roundToF16: boolean): Promise<ErrorStats> {
  const rtn: QuantChoice = { ...choice, method: 'rtn', codebook: 'uniform' };
  const q = await quantizeMatrix(backend, w0, rowAbsMax0, rtn, roundToF16);
  try {
    return await quantizationError(backend, w0, q.mat);
  } finally {
    backend.release(q.mat);
  }
}
