import type { Backend, Mat } from '../ports';
import type { PlanItem } from '../qwen2/plan';
import type { TensorScales } from '../quant/scales';
import type { Phase } from './events';
import type { TensorReport } from './report';
import { baselineError, quantizationError, quantizeMatrix } from './quantize';
import { addQuantizedFigures, matrixReport } from './tensor-report';
import { isIdentity, transformMatrix, type MatrixTransform } from './transform';

export interface ProcessedMatrix {
  /** The weight as written (output dtype). */
  weightBytes: Uint8Array;
  report: TensorReport;
  /** Quantized items: the scales written beside the weight, and the grid. */
  scales?: TensorScales;
  grid?: { qmin: number; qmax: number };
}

/**
 * One matrix through the per-tensor stages: statistics of the original → transform (fuse, rotate)
 * → report (ranges, histograms) → baseline RTN of the original → scales → quantize → errors.
 * Consumes (releases) `w0`.
 */
export async function processMatrix(
  backend: Backend,
  item: PlanItem,
  w0: Mat,
  transform: MatrixTransform,
  outDtype: 'F16' | 'F32',
  phase: (p: Phase) => void,
): Promise<ProcessedMatrix> {
  const transformed = !isIdentity(transform);
  const toRelease: Mat[] = [w0];
  try {
    const rowMax0 = await backend.rowAbsMax(w0);
    let w = w0;
    let rowMax = rowMax0;
    if (transformed) {
      phase('transform');
      w = await transformMatrix(backend, w0, transform);
      toRelease.push(w);
      rowMax = await backend.rowAbsMax(w);
    }
    const report = await matrixReport(backend, item, w0, w, rowMax0, rowMax);
    // The original is done with once its histogram and baseline exist: free it before the
    // quantized copy is made (the embedding is the largest tensor by far).
    const releaseOriginal = (): void => {
      if (!transformed) return;
      backend.release(w0);
      toRelease.splice(toRelease.indexOf(w0), 1);
    };

    const choice = item.quant;
    if (!choice) {
      releaseOriginal();
      return { weightBytes: await backend.read(w, outDtype), report };
    }
    phase('quantize');
    const roundToF16 = outDtype === 'F16';
    if (transformed) report.baselineError = await baselineError(backend, w0, rowMax0, choice, roundToF16);
    releaseOriginal();
    const q = await quantizeMatrix(backend, w, rowMax, choice, roundToF16);
    toRelease.push(q.mat);
    report.error = await quantizationError(backend, w, q.mat);
    if (!transformed) report.baselineError = report.error;
    await addQuantizedFigures(backend, report, q);
    const weightBytes = await backend.read(q.mat, outDtype);
    return { weightBytes, report, scales: q.scales, grid: { qmin: q.qmin, qmax: q.qmax } };
  } finally {
    for (const m of toRelease) backend.release(m);
  }
}
