import type { Backend, Mat } from '../ports';
import type { PlanItem } from '../qwen2/plan';
import type { TensorScales } from '../quant/scales';
import type { Phase } from './events';
import type { TensorReport } from './report';
import { baselineError, quantizationError, quantizeMatrix, type QuantizedMatrix } from './quantize';
import { addQuantizedFigures, matrixReport } from './tensor-report';
import { isIdentity, transformMatrix, type MatrixTransform } from './transform';

export interface ProcessedMatrix {
  /** The weight as written (output dtype). */
  weightBytes: Uint8Array;
  report: TensorReport;
  /** Quantized items: the scales written beside the weight, the grid and the codebook. */
  scales?: TensorScales;
  grid?: { qmin: number; qmax: number };
  codebook?: Float32Array;
}

/** A matrix after the transform stage: the f32 weights to quantize (owned by the caller) and its report so far. */
export interface TransformedMatrix {
  w: Mat;
  rowMax: Float32Array;
  report: TensorReport & { histogram: NonNullable<TensorReport['histogram']> };
  transformed: boolean;
}

/**
 * Stages 1–3 of a matrix: statistics of the original → transform (fuse, rotate) → report (ranges,
 * histograms) and, for a quantized item, the baseline (plain RTN of the original). Consumes `w0`;
 * the caller owns (releases) the returned `w`.
 */
export async function transformStage(backend: Backend, item: PlanItem, w0: Mat, transform: MatrixTransform, outDtype: 'F16' | 'F32', phase: (p: Phase) => void): Promise<TransformedMatrix> {
  const transformed = !isIdentity(transform);
  let w: Mat | null = null;
  try {
    const rowMax0 = await backend.rowAbsMax(w0);
    let rowMax = rowMax0;
    if (transformed) {
      phase('transform');
      w = await transformMatrix(backend, w0, transform);
      rowMax = await backend.rowAbsMax(w);
    }
    const report = await matrixReport(backend, item, w0, w ?? w0, rowMax0, rowMax);
    if (item.quant && transformed) {
      phase('quantize');
      report.baselineError = await baselineError(backend, w0, rowMax0, item.quant, outDtype === 'F16');
    }
    // The original is done with once its histogram and baseline exist: free it before the
    // quantized copy is made (the embedding is the largest tensor by far).
    if (transformed) backend.release(w0);
    return { w: w ?? w0, rowMax, report, transformed };
  } catch (e) {
    backend.release(w0);
    if (w) backend.release(w);
    throw e;
  }
}

/** Stage 5: the report's figures of what is written, and the weight's bytes. Releases `q.mat`. */
export async function finishQuantized(backend: Backend, t: TransformedMatrix, q: QuantizedMatrix, outDtype: 'F16' | 'F32'): Promise<ProcessedMatrix> {
  try {
    t.report.error = await quantizationError(backend, t.w, q.mat);
    if (!t.transformed) t.report.baselineError = t.report.error;
    await addQuantizedFigures(backend, t.report, q);
    const weightBytes = await backend.read(q.mat, outDtype);
    return { weightBytes, report: t.report, scales: q.scales, grid: { qmin: q.qmin, qmax: q.qmax }, codebook: q.codebook };
  } finally {
    backend.release(q.mat);
  }
}

/**
 * One matrix through the per-tensor stages with round-to-nearest: transform stage → scales →
 * quantize → errors and report. Consumes (releases) `w0`.
 */
export async function processMatrix(
  backend: Backend,
  item: PlanItem,
  w0: Mat,
  transform: MatrixTransform,
  outDtype: 'F16' | 'F32',
  phase: (p: Phase) => void,
): Promise<ProcessedMatrix> {
  const t = await transformStage(backend, item, w0, transform, outDtype, phase);
  try {
    if (!item.quant) return { weightBytes: await backend.read(t.w, outDtype), report: t.report };
    if (!t.transformed) phase('quantize');
    const q = await quantizeMatrix(backend, t.w, t.rowMax, item.quant, outDtype === 'F16', { name: item.name });
    return await finishQuantized(backend, t, q, outDtype);
  } finally {
    backend.release(t.w);
  }
}
