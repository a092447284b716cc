/**
 * Numbers the UI shows but should not compute itself: progress rates and ETA, the pre-run
 * estimate and warnings, table rows, chart series and histogram markers.
 */
import type { TensorReport } from '../core/pipeline/report';
import { runFraction } from '../core/progress';
import { computeSeconds, fasterBackend, peakMemoryBytes, type BackendCalibration, type ModelSize } from '../core/estimate';
import type { QuantSettings } from '../core/settings';
import type { BackendChoice, Preflight, RunProgress } from '../worker/protocol';
import type { Destination, ModelKind, PageCapabilities } from './store';

export const MB = 1e6;

export function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e8 ? 0 : 1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)} kB`;
  return `${n} B`;
}

export function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return '—';
  if (s < 1) return '<1 s';
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)} K`;
  return String(n);
}

export type UiPhase = 'prepare' | 'download' | 'rotate' | 'calibrate' | 'gptq' | 'quantize' | 'write' | 'finalize' | 'done';

export const TENSOR_STEPS: UiPhase[] = ['download', 'rotate', 'quantize', 'write'];

export interface ProgressView {
  fraction: number;
  phase: UiPhase;
  phaseLabel: string;
  tensorIndex: number;
  tensorCount: number;
  tensorName: string;
  /** Index of the current step in TENSOR_STEPS (−1 outside tensor work). */
  step: number;
  /** Source bytes read per second (recent window while running; the run's average when finished). */
  readBytesPerSec: number;
  /** Hub download rate, when downloading. */
  downloadMbPerSec: number | null;
  etaSeconds: number | null;
  elapsedSeconds: number;
  bytesRead: number;
  bytesToRead: number;
  bytesWritten: number;
}

const PHASE_LABEL: Record<UiPhase, string> = {
  prepare: 'reading headers',
  download: 'download',
  rotate: 'rotate',
  calibrate: 'calibration forward + Hessians',
  gptq: 'GPTQ',
  quantize: 'quantize',
  write: 'write',
  finalize: 'writing config, tokenizer and model card',
  done: 'done',
};

export function progressView(p: RunProgress, finished = false): ProgressView {
  const phase: UiPhase =
    p.phase === 'read' ? 'download' : p.phase === 'transform' ? 'rotate' : p.phase === 'quantize' ? 'quantize' : p.phase === 'write' ? 'write' : p.phase;
  // The worker measures over every event (src/core/progress.ts); the page only shows it.
  const est = p.estimate;
  const fraction = finished ? 1 : est?.fraction ?? runFraction(p);
  const elapsed = p.elapsedMs / 1000;
  const etaSeconds = finished ? null : est?.etaSeconds ?? null;
  return {
    fraction,
    phase,
    phaseLabel: PHASE_LABEL[phase],
    tensorIndex: p.tensorIndex,
    tensorCount: p.tensorCount,
    tensorName: p.tensorName,
    step: TENSOR_STEPS.indexOf(phase),
    readBytesPerSec: finished || !est ? (elapsed > 0 ? p.bytesRead / elapsed : 0) : est.readBytesPerSec,
    downloadMbPerSec: p.download ? p.download.mbPerSec : null,
    // Downloading from the Hub bounds the run: the later of the two estimates.
    etaSeconds: p.download?.etaSeconds !== undefined && etaSeconds !== null && p.download.etaSeconds > etaSeconds ? p.download.etaSeconds : etaSeconds,
    elapsedSeconds: elapsed,
    bytesRead: p.bytesRead,
    bytesToRead: p.bytesToRead,
    bytesWritten: p.bytesWritten,
  };
}

/** A preflight's size, as the estimate needs it. */
export function modelSize(pf: Preflight): ModelSize {
  return { parameters: pf.parameters, quantizedCount: pf.quantizedCount, tensorBytes: pf.tensorBytes, largestTensor: pf.largestTensor, largestProjection: pf.largestProjection };
}

/** Download rate assumed for a Hub model before anything was measured (stated as such in the UI). */
export const ASSUMED_DOWNLOAD_BYTES_PER_SEC = 50 * MB;

export interface RunEstimateView {
  /** Per calibrated backend: seconds of computation for this model and these settings. */
  backends: { backend: 'cpu' | 'webgpu'; description: string; software: boolean; seconds: number }[];
  /** The backend the run will use ('auto' resolved), and its total time including the download. */
  chosen: { backend: 'cpu' | 'webgpu'; seconds: number } | null;
  downloadSeconds: number;
  peakMemoryBytes: number;
  /** False until the worker's calibration is in. */
  measured: boolean;
}

export function estimateRun(size: ModelSize, outputBytes: number, s: QuantSettings, backend: BackendChoice, cals: BackendCalibration[], kind: ModelKind, destination: Destination): RunEstimateView {
  const backends = cals.map((c) => ({ backend: c.backend, description: c.description, software: c.software, seconds: computeSeconds(c, size, s) }));
  const pick = backend === 'auto' ? fasterBackend(cals, size, s)?.backend.backend : backend;
  const hit = backends.find((b) => b.backend === pick) ?? (backend !== 'cpu' ? undefined : backends.find((b) => b.backend === 'cpu'));
  const downloadSeconds = kind === 'hub' ? size.tensorBytes / ASSUMED_DOWNLOAD_BYTES_PER_SEC : 0;
  return {
    backends,
    chosen: hit ? { backend: hit.backend, seconds: hit.seconds + downloadSeconds } : null,
    downloadSeconds,
    peakMemoryBytes: peakMemoryBytes(size, outputBytes, destination, { wholeProjections: s.bits !== 16 && (s.method === 'gptq' || s.codebook === 'learned') }),
    measured: cals.length > 0,
  };
}

/**
 * What the run uses: "auto" becomes the backend the calibration measured faster for this model
 * (a software WebGPU adapter measures slow, so it loses to the CPU); before the calibration is in,
 * "auto" stays the worker's (WebGPU when there is an adapter).
 */
export function resolveBackend(choice: BackendChoice, pf: Preflight | undefined, s: QuantSettings, cals: BackendCalibration[]): { backend: BackendChoice; notice?: string } {
  if (choice !== 'auto' || !pf || cals.length < 2) return { backend: choice };
  const f = fasterBackend(cals, modelSize(pf), s);
  if (!f) return { backend: choice };
  const name = (b: BackendCalibration) => (b.backend === 'cpu' ? 'the CPU' : `WebGPU (${b.description}${b.software ? ', a software adapter' : ''})`);
  const others = f.others.map((o) => `${name(o.backend)} ≈ ${formatDuration(o.seconds)}`).join(', ');
  return { backend: f.backend.backend, notice: `Backend "auto": ${name(f.backend)}, measured faster for a model this size (≈ ${formatDuration(f.seconds)}; ${others}).` };
}

export type GpuClass = 'none' | 'software' | 'hardware';

/** What the worker's adapter is, for the estimate: none, a software rasteriser, or a real GPU. */
export function gpuClass(caps: PageCapabilities | null): GpuClass {
  const a = caps?.worker?.adapter;
  if (!a) return 'none';
  return /swiftshader|llvmpipe|lavapipe|software|basic render/i.test(`${a.vendor} ${a.architecture} ${a.device} ${a.description}`) ? 'software' : 'hardware';
}

const GB = 1e9;

export function preRunWarnings(pf: Preflight | undefined, caps: PageCapabilities | null, destination: Destination): string[] {
  const w: string[] = [];
  if (caps) {
    if (!caps.webgpu) w.push('This browser has no WebGPU: the run uses the CPU backend (same bytes, slower).');
    else if (caps.worker && !caps.worker.webgpu) w.push('WebGPU is not available inside Web Workers here: the run uses the CPU backend (same bytes, slower).');
    else if (caps.worker && !caps.worker.adapter) w.push(`No WebGPU adapter in the worker${caps.worker.adapterError ? ` (${caps.worker.adapterError})` : ''}: the run uses the CPU backend.`);
  }
  if (!pf) return w;
  if (destination === 'zip' && pf.outputBytes > 1.5 * GB) w.push(`The zip (${formatBytes(pf.outputBytes)}) is assembled in memory; for a bundle this size prefer writing into a folder.`);
  if (caps?.storage) {
    const free = caps.storage.quota - caps.storage.usage;
    if (destination === 'opfs' && pf.outputBytes > free) w.push(`Browser storage has ${formatBytes(free)} free but the bundle needs ${formatBytes(pf.outputBytes)}.`);
    else if (destination !== 'folder' && pf.outputBytes > 0.8 * free) w.push(`The bundle (${formatBytes(pf.outputBytes)}) is close to the browser's free storage (${formatBytes(free)}).`);
  }
  if (pf.tensorBytes > 4 * GB) w.push(`A large model (${formatBytes(pf.tensorBytes)}): it streams tensor by tensor, but the run is long — keep this tab open and the computer awake.`);
  return w;
}

/**
 * Bundle folder / zip name, e.g. "Qwen2.5-0.5B-quarot-w4-sp-mse", with a suffix per extra so
 * different settings do not collide: "-gptq", "-lut" (learned codebooks), "-w8x10" (10 % of the
 * projection parameters at 8 bits, 4-bit runs only), "-mixed" (bits overrides); "-insc" for fitted
 * per-input-column scales.
 */
export function bundleName(model: string, s: QuantSettings): string {
  const base = (model.split('/').pop() || 'model').replace(/[^\w.-]+/g, '_');
  const rot = s.rotation === 'full' ? '' : s.rotation === 'block' ? `-block${s.blockSize}` : '-norot';
  if (s.bits === 16) return `${base}-quarot-f16${rot}`;
  const extras = [
    s.method === 'gptq' ? '-gptq' : '',
    s.codebook === 'learned' ? '-lut' : '',
    s.inputScales === 'fitted' ? '-insc' : '',
    s.bits === 4 && s.w8Budget > 0 ? `-w8x${Number((s.w8Budget * 100).toPrecision(4))}` : '',
    s.bitsOverride ? '-mixed' : '',
  ].join('');
  return `${base}-quarot-w${s.bits}-${s.scheme}-${s.clip}${rot}${extras}`;
}

// ---- table ---------------------------------------------------------------------------

export interface TensorRow {
  name: string;
  layer: number | null;
  proj: string;
  shape: string;
  scale: string;
  error: number | null;
  baseline: number | null;
  sqnr: number | null;
  baselineSqnr: number | null;
  /** baseline − error (positive: rotation helped). */
  gain: number | null;
  /** With calibration data (GPTQ): output error ‖(W−Ŵ)X‖/‖WX‖ of what was written, and of RTN with the same scales. */
  calib: number | null;
  calibRtn: number | null;
}

export type SortKey = 'order' | 'layer' | 'proj' | 'error' | 'baseline' | 'sqnr' | 'gain' | 'calib' | 'calibRtn';

function scaleText(r: TensorReport): string {
  if (r.inputScale === undefined) return '—';
  const lo = r.outputScaleMin ?? 1;
  const hi = r.outputScaleMax ?? 1;
  if (lo === hi) return (r.inputScale * lo).toPrecision(3);
  return `${r.inputScale.toPrecision(3)} × [${lo.toPrecision(2)}, ${hi.toPrecision(2)}]`;
}

export function tensorRows(reports: TensorReport[], filter: string, sort: SortKey, desc: boolean): TensorRow[] {
  const f = filter.trim().toLowerCase();
  const rows: TensorRow[] = reports
    .filter((r) => r.kind !== 'norm')
    .map((r) => ({
      name: r.name,
      layer: r.layer,
      proj: r.proj ?? r.kind,
      shape: r.shape.join('×'),
      scale: scaleText(r),
      error: r.error?.relError ?? null,
      baseline: r.baselineError?.relError ?? null,
      sqnr: r.error?.sqnrDb ?? null,
      baselineSqnr: r.baselineError?.sqnrDb ?? null,
      gain: r.error && r.baselineError ? r.baselineError.relError - r.error.relError : null,
      calib: r.calibError?.written ?? null,
      calibRtn: r.calibError?.rtn ?? null,
    }))
    .filter((r) => !f || r.name.toLowerCase().includes(f) || r.proj.toLowerCase().includes(f) || (r.layer !== null && `layer ${r.layer}` === f));
  if (sort === 'order') return desc ? rows.reverse() : rows;
  const val = (r: TensorRow): number | string => {
    switch (sort) {
      case 'layer': return r.layer ?? -1;
      case 'proj': return r.proj;
      case 'error': return r.error ?? -Infinity;
      case 'baseline': return r.baseline ?? -Infinity;
      case 'sqnr': return r.sqnr ?? -Infinity;
      case 'calib': return r.calib ?? -Infinity;
      case 'calibRtn': return r.calibRtn ?? -Infinity;
      default: return r.gain ?? -Infinity;
    }
  };
  return rows.sort((a, b) => {
    const x = val(a);
    const y = val(b);
    const c = x < y ? -1 : x > y ? 1 : 0;
    return desc ? -c : c;
  });
}

// ---- per-layer chart -----------------------------------------------------------------

export interface LayerSeries {
  layers: number[];
  /** Mean relative error per layer over its quantized projections: written / plain RTN. */
  error: number[];
  baseline: number[];
  max: number;
}

export function layerSeries(reports: TensorReport[]): LayerSeries {
  const acc = new Map<number, { e: number; b: number; n: number }>();
  for (const r of reports) {
    if (r.layer === null || !r.error || !r.baselineError) continue;
    const a = acc.get(r.layer) ?? { e: 0, b: 0, n: 0 };
    a.e += r.error.relError;
    a.b += r.baselineError.relError;
    a.n++;
    acc.set(r.layer, a);
  }
  const layers = [...acc.keys()].sort((a, b) => a - b);
  const error = layers.map((l) => acc.get(l)!.e / acc.get(l)!.n);
  const baseline = layers.map((l) => acc.get(l)!.b / acc.get(l)!.n);
  return { layers, error, baseline, max: Math.max(0, ...error, ...baseline) };
}

/** Mean output error on the calibration data per layer (GPTQ runs): what was written vs RTN with the same scales. */
export function calibLayerSeries(reports: TensorReport[]): LayerSeries {
  const acc = new Map<number, { e: number; b: number; n: number }>();
  for (const r of reports) {
    if (r.layer === null || !r.calibError) continue;
    const a = acc.get(r.layer) ?? { e: 0, b: 0, n: 0 };
    a.e += r.calibError.written;
    a.b += r.calibError.rtn;
    a.n++;
    acc.set(r.layer, a);
  }
  const layers = [...acc.keys()].sort((a, b) => a - b);
  const error = layers.map((l) => acc.get(l)!.e / acc.get(l)!.n);
  const baseline = layers.map((l) => acc.get(l)!.b / acc.get(l)!.n);
  return { layers, error, baseline, max: Math.max(0, ...error, ...baseline) };
}

// ---- histograms ----------------------------------------------------------------------

export interface HistogramSeries {
  label: 'before rotation' | 'after rotation' | 'after quantization';
  /** Heights in [0, 1] (linear or log1p-scaled to the tallest bin of all series). */
  heights: number[];
  /** Bins holding outliers (beyond 4σ of that series), as indices. */
  outlierBins: number[];
  /** max|W| of this series, as a bin-axis position in [0, 1] from the left edge. */
  absmaxPos: [number, number] | null;
}

export interface HistogramView {
  range: number;
  bins: number;
  series: HistogramSeries[];
}

function binStats(counts: Uint32Array, range: number): { mean: number; std: number; total: number } {
  const n = counts.length;
  const width = (2 * range) / n;
  let total = 0;
  let s = 0;
  let s2 = 0;
  for (let i = 0; i < n; i++) {
    const c = -range + (i + 0.5) * width;
    total += counts[i];
    s += counts[i] * c;
    s2 += counts[i] * c * c;
  }
  const mean = total ? s / total : 0;
  return { mean, std: total ? Math.sqrt(Math.max(0, s2 / total - mean * mean)) : 0, total };
}

export function histogramView(r: TensorReport, log: boolean): HistogramView | null {
  const h = r.histogram;
  if (!h) return null;
  const list: { label: HistogramSeries['label']; counts: Uint32Array; absmax: number | null }[] = [{ label: 'before rotation', counts: h.before, absmax: r.absmaxBefore }];
  if (r.transformed) list.push({ label: 'after rotation', counts: h.after, absmax: r.absmaxAfter });
  if (h.quantized) list.push({ label: 'after quantization', counts: h.quantized, absmax: null });
  const scale = (c: number): number => (log ? Math.log10(1 + c) : c);
  let top = 0;
  for (const s of list) for (const c of s.counts) top = Math.max(top, scale(c));
  const bins = h.before.length;
  const width = (2 * h.range) / bins;
  return {
    range: h.range,
    bins,
    series: list.map((s) => {
      const st = binStats(s.counts, h.range);
      const outlierBins: number[] = [];
      if (st.std > 0) {
        for (let i = 0; i < bins; i++) {
          const c = -h.range + (i + 0.5) * width;
          if (s.counts[i] > 0 && Math.abs(c - st.mean) > 4 * st.std) outlierBins.push(i);
        }
      }
      const pos = (x: number): number => (x + h.range) / (2 * h.range);
      return {
        label: s.label,
        heights: Array.from(s.counts, (c) => (top > 0 ? scale(c) / top : 0)),
        outlierBins,
        absmaxPos: s.absmax !== null ? [pos(-s.absmax), pos(s.absmax)] : null,
      };
    }),
  };
}

/** How much lower the relative error is than plain RTN, in percentage points ("+21.92": 21.92 points lower, better; "−0.40": worse). */
export function gainText(gain: number | null): string {
  if (gain === null) return '—';
  if (gain === 0) return '0.00';
  return `${gain > 0 ? '+' : '−'}${Math.abs(gain * 100).toFixed(2)}`;
}

/** Relative error as a percentage string. */
export function pct(x: number | null | undefined, digits = 2): string {
  return x === null || x === undefined ? '—' : `${(x * 100).toFixed(digits)} %`;
}

export function db(x: number | null | undefined): string {
  if (x === null || x === undefined) return '—';
  return Number.isFinite(x) ? `${x.toFixed(1)} dB` : '∞';
}

/** Totals for the verdict line (SPEC §3: always say whether rotation beat plain RTN). */
export { errorTotals } from '../core/pipeline/report';
