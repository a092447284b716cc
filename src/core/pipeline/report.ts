import type { ErrorStats } from '../quant/metrics';
import type { ProjName } from '../qwen2/plan';

export const HISTOGRAM_BINS = 128;

/** What the pipeline learned about one tensor (the app's table and histograms, the CLI summary). */
export interface TensorReport {
  name: string;
  kind: 'embedding' | 'lm_head' | 'norm' | 'projection';
  layer: number | null;
  proj: ProjName | null;
  shape: number[];
  quantized: boolean;
  /** γ fused and/or rotated. */
  transformed: boolean;
  /** max|W| before (original) and after fusion/rotation. */
  absmaxBefore: number;
  absmaxAfter: number;
  /** Quantized tensors only. */
  inputScale?: number;
  outputScaleMin?: number;
  outputScaleMax?: number;
  /** Fitted per-column input scales: their range (F16 values) and the fit's grid point (scales.ts fitInputScales). */
  inputScales?: { min: number; max: number; alpha: number; beta: number; refinements: number };
  /** Mean chosen clip ratio α (1 for absmax). */
  alphaMean?: number;
  /** Error of what was written, against the fused/rotated f32 weights. */
  error?: ErrorStats;
  /** Plain RTN of the original, unfused weights with the same scheme and clip (the baseline). */
  baselineError?: ErrorStats;
  /**
   * With calibration data: the output error ‖(W − Ŵ)X‖/‖WX‖ on the calibration inputs of what was
   * written (GPTQ or RTN) and of round-to-nearest with the same scales.
   */
  calibError?: { written: number; rtn: number };
  /** Bits of a quantized tensor (mixed precision: a projection's own width). */
  bits?: 4 | 8;
  /** A learned codebook's entries (absent for the integer grid). */
  codebook?: number[];
  /** GPTQ details: the damping finally used and the input channels that were dead (H_jj = 0). */
  gptq?: { dampUsed: number; deadColumns: number };
  /** Counts of each integer code, index q − qmin. */
  codeCounts?: Uint32Array;
  /** Histograms over [−range, range], HISTOGRAM_BINS bins (matrices only). */
  histogram?: { range: number; before: Uint32Array; after: Uint32Array; quantized?: Uint32Array };
}

export interface LayerSummaryRow {
  layer: number;
  /** relative error per projection: [with rotation, baseline] */
  cells: Partial<Record<ProjName, { error: number; baseline: number }>>;
}

/** Per-layer table of relative errors, used by the CLI's final summary and the model card. */
export function layerSummary(reports: TensorReport[]): LayerSummaryRow[] {
  const rows = new Map<number, LayerSummaryRow>();
  for (const r of reports) {
    if (r.layer === null || r.proj === null || !r.error || !r.baselineError) continue;
    let row = rows.get(r.layer);
    if (!row) rows.set(r.layer, (row = { layer: r.layer, cells: {} }));
    row.cells[r.proj] = { error: r.error.relError, baseline: r.baselineError.relError };
  }
  return [...rows.values()].sort((a, b) => a.layer - b.layer);
}

export interface ErrorTotals {
  tensors: number;
  meanError: number;
  meanBaseline: number;
  /** Tensors where the written weights have lower error than plain RTN. */
  betterThanBaseline: number;
}

export function errorTotals(reports: TensorReport[]): ErrorTotals {
  const q = reports.filter((r) => r.error && r.baselineError);
  const mean = (f: (r: TensorReport) => number): number => (q.length ? q.reduce((s, r) => s + f(r), 0) / q.length : 0);
  return {
    tensors: q.length,
    meanError: mean((r) => r.error!.relError),
    meanBaseline: mean((r) => r.baselineError!.relError),
    betterThanBaseline: q.filter((r) => r.error!.relError < r.baselineError!.relError).length,
  };
}

const PROJ_SHORT: Record<ProjName, string> = { q_proj: 'q', k_proj: 'k', v_proj: 'v', o_proj: 'o', gate_proj: 'gate', up_proj: 'up', down_proj: 'down' };

/** Fixed-width text table: one line per layer, "rotated/plain" relative error (%) per projection. */
export function formatLayerSummary(reports: TensorReport[]): string {
  const rows = layerSummary(reports);
  if (rows.length === 0) return '(no quantized projections)';
  const projs = Object.keys(PROJ_SHORT) as ProjName[];
  const head = ['layer', ...projs.map((p) => PROJ_SHORT[p])].map((s, i) => (i === 0 ? s.padEnd(5) : s.padStart(13))).join(' ');
  const lines = [head + '   (relative error %, written / plain RTN)'];
  for (const row of rows) {
    const cells = projs.map((p) => {
      const c = row.cells[p];
      return (c ? `${(c.error * 100).toFixed(2)}/${(c.baseline * 100).toFixed(2)}` : '-').padStart(13);
    });
    lines.push([String(row.layer).padEnd(5), ...cells].join(' '));
  }
  const t = errorTotals(reports);
  lines.push(
    `mean relative error ${(t.meanError * 100).toFixed(3)} % (plain RTN ${(t.meanBaseline * 100).toFixed(3)} %); ` +
      `${t.betterThanBaseline}/${t.tensors} tensors better than plain RTN`,
  );
  return lines.join('\n');
}

export interface CalibErrorTotals {
  tensors: number;
  /** Mean output error on the calibration data of what was written, and of RTN with the same scales. */
  meanWritten: number;
  meanRtn: number;
  /** Projections whose written output error is below RTN's. */
  lower: number;
}

export function calibErrorTotals(reports: TensorReport[]): CalibErrorTotals {
  const q = reports.filter((r) => r.calibError);
  const mean = (f: (r: TensorReport) => number): number => (q.length ? q.reduce((s, r) => s + f(r), 0) / q.length : 0);
  return {
    tensors: q.length,
    meanWritten: mean((r) => r.calibError!.written),
    meanRtn: mean((r) => r.calibError!.rtn),
    lower: q.filter((r) => r.calibError!.written < r.calibError!.rtn).length,
  };
}

/**
 * With calibration data (GPTQ): one line per layer, "GPTQ/RTN" output error ‖(W−Ŵ)X‖/‖WX‖ (%) per
 * projection on the calibration inputs, and the means. Empty when no report has one.
 */
export function formatCalibSummary(reports: TensorReport[]): string {
  const rows = new Map<number, Partial<Record<ProjName, { written: number; rtn: number }>>>();
  for (const r of reports) {
    if (r.layer === null || r.proj === null || !r.calibError) continue;
    const row = rows.get(r.layer) ?? {};
    row[r.proj] = r.calibError;
    rows.set(r.layer, row);
  }
  if (rows.size === 0) return '';
  const projs = Object.keys(PROJ_SHORT) as ProjName[];
  const head = ['layer', ...projs.map((p) => PROJ_SHORT[p])].map((s, i) => (i === 0 ? s.padEnd(5) : s.padStart(13))).join(' ');
  const lines = [head + '   (output error % on calibration data, GPTQ / RTN)'];
  for (const layer of [...rows.keys()].sort((a, b) => a - b)) {
    const row = rows.get(layer)!;
    const cells = projs.map((p) => {
      const c = row[p];
      return (c ? `${(c.written * 100).toFixed(2)}/${(c.rtn * 100).toFixed(2)}` : '-').padStart(13);
    });
    lines.push([String(layer).padEnd(5), ...cells].join(' '));
  }
  const t = calibErrorTotals(reports);
  const change = t.meanRtn > 0 ? ` (${((t.meanWritten / t.meanRtn - 1) * 100).toFixed(1)} %)` : '';
  lines.push(`mean output error GPTQ ${(t.meanWritten * 100).toFixed(3)} % vs RTN ${(t.meanRtn * 100).toFixed(3)} %${change}; ${t.lower}/${t.tensors} projections lower with GPTQ`);
  return lines.join('\n');
}
