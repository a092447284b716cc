/**
 * Time and memory estimates from measurement. A backend is calibrated by running the real
 * pipeline on two small generated models (src/worker/calibrate.ts); the two times give a
 * per-tensor overhead and a per-parameter cost (t = a·tensors + b·params), which then scale to
 * the model at hand. "auto" picks whichever backend the fit says is faster for that model — a
 * software WebGPU adapter measures slow and so loses to the CPU without a special case.
 */
import type { QuantSettings } from './settings';
import { DEFAULT_TILE_BYTES } from './pipeline/tiled';

export interface CalibrationSample {
  /** Quantized tensors and parameters of the generated model. */
  tensors: number;
  parameters: number;
  ms: number;
}

export interface BackendCost {
  /** Fixed cost per quantized tensor (dispatch, readback, scheduling), ms. */
  perTensorMs: number;
  /** Cost per parameter, ns. */
  perParamNs: number;
}

export interface BackendCalibration extends BackendCost {
  backend: 'cpu' | 'webgpu';
  description: string;
  /** A software rasteriser (SwiftShader, llvmpipe): shown as such. */
  software: boolean;
  samples: CalibrationSample[];
}

/** Settings the calibration runs with; others are scaled by `settingsFactor`. */
export const CALIBRATION_SETTINGS: Partial<QuantSettings> = { bits: 4, scheme: 'sp', clip: 'mse', rotation: 'full' };

/**
 * Least-squares fit of t = a·tensors + b·params through the samples (two or more), with both
 * coefficients kept ≥ 0 (a negative overhead would make a big model look cheaper than a small one).
 */
export function fitCost(samples: CalibrationSample[]): BackendCost {
  if (samples.length === 0) throw new Error('fitCost: no samples');
  if (samples.length === 1) {
    // One sample is taken only when the small model was already slow: fixed costs dominate then.
    const s = samples[0];
    return { perTensorMs: s.ms / Math.max(1, s.tensors), perParamNs: 0 };
  }
  let stt = 0, spp = 0, stp = 0, sty = 0, spy = 0;
  for (const s of samples) {
    stt += s.tensors * s.tensors;
    spp += s.parameters * s.parameters;
    stp += s.tensors * s.parameters;
    sty += s.tensors * s.ms;
    spy += s.parameters * s.ms;
  }
  const det = stt * spp - stp * stp;
  let a = det !== 0 ? (sty * spp - spy * stp) / det : 0;
  let b = det !== 0 ? (stt * spy - stp * sty) / det : 0;
  if (a < 0 || det === 0) { a = 0; b = spy / spp; }
  if (b < 0) { b = 0; a = sty / stt; }
  return { perTensorMs: a, perParamNs: b * 1e6 };
}

/**
 * Cost of other settings relative to the calibration's (W4 SP, MSE clip, full rotation),
 * measured with the CPU backend on the 2.3M-parameter demo model: the MSE clip search is most of
 * the work; without rotation the fusion/rotation passes go; 16 bits quantizes nothing.
 */
export function settingsFactor(s: QuantSettings): number {
  const clip = s.bits === 16 ? 0.15 : s.clip === 'mse' ? 1 : 0.4;
  const rotation = s.rotation === 'none' ? 0.8 : 1;
  return clip * rotation;
}

export interface ModelSize {
  parameters: number;
  /** Tensors the run quantizes (projections, embeddings). */
  quantizedCount: number;
  /** Bytes of tensor data read, and the largest single tensor's element count (memory). */
  tensorBytes: number;
  largestTensor: number;
  /** The largest decoder-layer matrix's element count (down_proj's F·d); absent: largestTensor. */
  largestProjection?: number;
}

/** Seconds of computation for a model on a calibrated backend. */
export function computeSeconds(cost: BackendCost, m: ModelSize, s: QuantSettings): number {
  return ((cost.perTensorMs * m.quantizedCount) / 1000 + (cost.perParamNs * m.parameters) / 1e9) * settingsFactor(s);
}

/** The faster calibrated backend for this model, and by how much. */
export function fasterBackend(cals: BackendCalibration[], m: ModelSize, s: QuantSettings): { backend: BackendCalibration; seconds: number; others: { backend: BackendCalibration; seconds: number }[] } | null {
  if (cals.length === 0) return null;
  const timed = cals.map((c) => ({ backend: c, seconds: computeSeconds(c, m, s) })).sort((a, b) => a.seconds - b.seconds);
  return { ...timed[0], others: timed.slice(1) };
}

/**
 * Peak memory of a run in the app. Tensors above a tile (DEFAULT_TILE_BYTES of f32) are processed
 * in tiles, about four tile-sized f32 buffers at a time; the app has no disk spool, so a
 * column-rotated projection (o_proj/down_proj under a full rotation) is held once in f32. GPTQ
 * layers and learned codebooks keep their projections whole (original, transformed, quantized:
 * three f32 copies of the largest). A zip destination also keeps the whole bundle in memory until
 * it is downloaded. (Measured on the CLI with a file spool: 335–358 MB peak RSS for 0.5B and
 * 7B-shaped checkpoints, README Limits.)
 */
export function peakMemoryBytes(m: ModelSize, outputBytes: number, destination: 'zip' | 'folder' | 'opfs', opts: { wholeProjections?: boolean } = {}): number {
  const projection = 4 * (m.largestProjection ?? m.largestTensor);
  const tile = Math.min(DEFAULT_TILE_BYTES, 4 * m.largestTensor);
  const work = opts.wholeProjections ? 3 * projection + 4 * tile : projection + 4 * tile;
  return work + (destination === 'zip' ? outputBytes : 0);
}

/** The Qwen2.5 base models, for estimates before anything is downloaded (shapes from their config.json). */
export interface KnownModel {
  repo: string;
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  vocab: number;
  tied: boolean;
}

export const QWEN25_MODELS: KnownModel[] = [
  { repo: 'Qwen/Qwen2.5-0.5B', hidden: 896, intermediate: 4864, layers: 24, heads: 14, kvHeads: 2, vocab: 151936, tied: true },
  { repo: 'Qwen/Qwen2.5-1.5B', hidden: 1536, intermediate: 8960, layers: 28, heads: 12, kvHeads: 2, vocab: 151936, tied: true },
  { repo: 'Qwen/Qwen2.5-3B', hidden: 2048, intermediate: 11008, layers: 36, heads: 16, kvHeads: 2, vocab: 151936, tied: true },
  { repo: 'Qwen/Qwen2.5-7B', hidden: 3584, intermediate: 18944, layers: 28, heads: 28, kvHeads: 4, vocab: 152064, tied: false },
];

/** Parameters, quantized tensors, BF16 bytes and largest tensor of a Qwen2 model from its shape. */
export function knownModelSize(k: KnownModel, quantizeEmbeddings = true): ModelSize {
  const d = k.hidden;
  const kv = (d / k.heads) * k.kvHeads;
  const attn = d * d + 2 * kv * d + d * d + d + 2 * kv; // q, k, v, o weights + q/k/v biases
  const mlp = 3 * k.intermediate * d;
  const perLayer = attn + mlp + 2 * d;
  const embed = k.vocab * d;
  const parameters = k.layers * perLayer + embed * (k.tied ? 1 : 2) + d;
  return {
    parameters,
    quantizedCount: 7 * k.layers + (quantizeEmbeddings ? 1 : 0),
    tensorBytes: 2 * parameters,
    largestTensor: Math.max(embed, k.intermediate * d),
    largestProjection: k.intermediate * d,
  };
}
