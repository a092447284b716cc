import type { Backend, Mat } from '../ports';
import type { PlanItem } from '../qwen2/plan';
import { HISTOGRAM_BINS, type TensorReport } from './report';
import type { FittedQuantizedMatrix, QuantizedMatrix } from './quantize';

const maxOf = (a: Float32Array): number => a.reduce((m, v) => (v > m ? v : m), 0);

/** A norm vector's report: its range before and after (ones once fused). */
export function normReport(item: PlanItem, g: Float32Array): TensorReport {
  let m = 0;
  for (const v of g) m = Math.max(m, Math.abs(v));
  return {
    name: item.name, kind: 'norm', layer: item.layer, proj: item.proj, shape: [g.length], quantized: false,
    transformed: item.writeOnes, absmaxBefore: m, absmaxAfter: item.writeOnes ? 1 : m,
  };
}

type MatrixReport = TensorReport & { histogram: NonNullable<TensorReport['histogram']> };

/** A matrix's report with its ranges and histograms before and after the transform (one shared range). */
export async function matrixReport(
  backend: Backend, item: PlanItem, w0: Mat, w: Mat, rowMax0: Float32Array, rowMax: Float32Array,
): Promise<MatrixReport> {
  const transformed = w !== w0;
  const absmaxBefore = maxOf(rowMax0);
  const absmaxAfter = maxOf(rowMax);
  const range = Math.max(absmaxBefore, absmaxAfter) || 1;
  const before = await backend.histogram(w0, range, HISTOGRAM_BINS);
  const after = transformed ? await backend.histogram(w, range, HISTOGRAM_BINS) : before;
  return matrixReportFrom(item, transformed, absmaxBefore, absmaxAfter, { range, before, after });
}

/** The report from figures already computed (the tiled path streams them). */
export function matrixReportFrom(
  item: PlanItem, transformed: boolean, absmaxBefore: number, absmaxAfter: number,
  histogram: { range: number; before: Uint32Array; after: Uint32Array },
): MatrixReport {
  return {
    name: item.name, kind: item.kind, layer: item.layer, proj: item.proj, shape: [item.rows, item.cols],
    quantized: item.quant !== null, transformed, absmaxBefore, absmaxAfter,
    histogram: { range: histogram.range, before: histogram.before, after: histogram.after },
  };
}

/** Add what quantization chose and produced: histogram of the written values, codes, scales. */
export async function addQuantizedFigures(backend: Backend, report: MatrixReport, q: QuantizedMatrix): Promise<void> {
  addQuantizedFiguresFrom(report, await backend.histogram(q.mat, report.histogram.range, HISTOGRAM_BINS), q);
}

/** `addQuantizedFigures` from the written values' histogram already computed. */
export function addQuantizedFiguresFrom(report: MatrixReport, quantized: Uint32Array, q: Omit<QuantizedMatrix, 'mat'>): void {
  report.histogram.quantized = quantized;
  report.codeCounts = q.codeCounts;
  report.inputScale = q.scales.inputScale;
  const si = q.scales.inputScales;
  if (si) {
    const fit = 'fit' in q ? (q as FittedQuantizedMatrix).fit : undefined;
    report.inputScales = {
      min: si.reduce((m, v) => Math.min(m, v), Infinity), max: maxOf(si),
      alpha: fit?.alpha ?? 0, beta: fit?.beta ?? 0, refinements: fit?.refinements ?? 0,
    };
  }
  report.outputScaleMin = q.scales.outputScales.reduce((m, v) => Math.min(m, v), Infinity);
  report.outputScaleMax = maxOf(q.scales.outputScales);
  report.alphaMean = q.scales.alphas.reduce((s, v) => s + v, 0) / q.scales.alphas.length;
  report.bits = q.qmax === 7 ? 4 : 8;
  if (q.codebook.some((v, i) => v !== q.qmin + i)) report.codebook = Array.from(q.codebook);
}
