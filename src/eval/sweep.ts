/**
 * The settings advisor (issue 12, deliverable 4): quantize a model at every point of a small grid
 * (method × codebook × W8 budget, src/eval/sweep-grid.ts), each into an in-memory bundle, and
 * score each bundle so a user picks settings with numbers in front of them.
 *
 * What is measured, for every point the same way:
 *  - perplexity on an evaluation text — the first `windows` non-overlapping windows of `seqlen`
 *    tokens, scored exactly as `npm run eval` scores a bundle (same windows, same CPU forward,
 *    same arithmetic: the number equals eval's "ppl_quantized" for that bundle). The text is not
 *    the calibration data (the default in the CLI and the app is the built-in evaluation text), so
 *    GPTQ and the W8 choice are judged on held-out tokens;
 *  - Δppl against the original model on the same windows (scored once);
 *  - the bundle's size (every file the pipeline wrote);
 *  - the time to make that bundle alone (its pipeline run, plus the W8 sensitivity pass for points
 *    with a budget).
 * Shared work is done once: the original model's weights and perplexity, the calibration set
 * (the caller builds it once), and the W8 sensitivity pass (it depends on neither the method, the
 * codebook nor the budget, run.ts measureW8Sensitivity). Each bundle is dropped once scored,
 * except the one `keep` asks for. Cancellable; nothing is written anywhere.
 */
import { CancelledError, InputError, throwIfAborted } from '../core/errors';
import { usesCalibration } from '../core/link';
import type { PipelineCalibration } from '../core/pipeline/calibration';
import type { ProgressEvent } from '../core/pipeline/events';
import { measureW8Sensitivity, runPipeline } from '../core/pipeline/run';
import type { LocalFolder } from '../core/bundle/model-card';
import type { RunTarget } from '../core/link';
import type { Backend, ModelSource } from '../core/ports';
import type { ProjectionSensitivity } from '../core/quant/mixed-precision';
import type { QuantSettings } from '../core/settings';
import { createMemorySink } from '../sinks/memory-sink';
import { createQwen2Cpu } from './forward-cpu';
import { loadAllWeights, mapWeights, openEvalModel, type EvalModel } from './load-model';
import { evaluate } from './perplexity';
import { gridPoints, pointLabel, type SweepGrid, type SweepPoint } from './sweep-grid';
import { loadTokenizer } from './tokenizer';

export interface SweepEvalText {
  /** Token ids, or `text` tokenized with the model's tokenizer. */
  tokens?: number[];
  text?: string;
  /** What the text is ("built-in evaluation text", a file name). */
  label: string;
  seqlen: number;
  /** The first N windows. */
  windows: number;
}

export interface SweepOptions {
  source: ModelSource;
  /** How each bundle describes its run (as a run of that point alone would). */
  target: RunTarget;
  modelArg?: string;
  localFolder?: LocalFolder;
  /** Everything but method, codebook and W8 budget, which each point sets. */
  settings: QuantSettings;
  grid: SweepGrid;
  backend: Backend;
  /** Needed when a point uses GPTQ or a W8 budget; handed to exactly the points that use it. */
  calibration?: PipelineCalibration;
  evalText: SweepEvalText;
  maxShardBytes?: number;
  /** Keep this point's bundle in memory: 'best' (the best so far), an index, or none (default). */
  keep?: 'best' | number;
  signal?: AbortSignal;
  onProgress?: (p: SweepProgress) => void;
  /** Each point's figures as soon as it is scored. */
  onPoint?: (r: SweepPointResult) => void;
}

export interface SweepProgress {
  stage: 'reference' | 'sensitivity' | 'quantize' | 'score';
  /** 0-based point index (quantize, score); -1 for shared work. */
  point: number;
  points: number;
  message: string;
  /** The pipeline's own event while a bundle is made (or the sensitivity pass runs). */
  pipeline?: ProgressEvent;
}

export interface SweepPointResult {
  index: number;
  point: SweepPoint;
  /** The full settings of this point (apply these to reproduce it). */
  settings: QuantSettings;
  label: string;
  ppl: number;
  /** ppl − the original's ppl on the same windows. */
  deltaPpl: number;
  /** Every file the pipeline wrote (without the sink's own manifest). */
  bytes: number;
  files: number;
  /** Its pipeline run, ms. */
  quantizeMs: number;
  /** The time to make this bundle alone: quantizeMs plus the sensitivity pass for W8 points. */
  aloneMs: number;
  scoreMs: number;
}

export interface SweepResult {
  pplOriginal: number;
  evalLabel: string;
  windows: number;
  seqlen: number;
  predictions: number;
  points: SweepPointResult[];
  /** Index of the lowest perplexity (the smaller bundle on a tie). */
  best: number;
  /** The W8 sensitivity pass, once for all W8 points (0 when no point needed it). */
  sensitivityMs: number;
  elapsedMs: number;
  /** The bundle `keep` asked for: its files in the order the pipeline wrote them. */
  kept?: { index: number; files: ReadonlyMap<string, Uint8Array> };
}

/** A point's full settings: the base with the point's method, codebook and budget. */
export function pointSettings(base: QuantSettings, p: SweepPoint): QuantSettings {
  return { ...base, method: p.method, codebook: p.codebook, w8Budget: p.w8Budget };
}

/** Settings a grid cannot be run with, refused before anything is read. */
export function checkSweep(base: QuantSettings, grid: SweepGrid, hasCalibration: boolean): void {
  if (base.bits === 16) throw new InputError('--sweep compares quantized bundles; --bits 16 quantizes nothing (use --bits 4 or 8)');
  if (base.bits === 8 && grid.w8Budgets.some((w) => w > 0)) {
    throw new InputError('--sweep: a W8 budget keeps 4-bit projections at 8 bits, and --bits 8 has none; give the grid w8=0 or use --bits 4');
  }
  const points = gridPoints(grid).map((p) => pointSettings(base, p));
  if (!hasCalibration && points.some(usesCalibration)) {
    throw new InputError('--sweep: the grid has GPTQ or W8-budget points, which need calibration data: give --calib (a calib.json, a text file, a Hub dataset or demo), or a grid of RTN points with w8=0');
  }
}

/** True when `a` is a better point than `b`: lower perplexity, the smaller bundle on a tie. */
function better(a: SweepPointResult, b: SweepPointResult): boolean {
  return a.ppl < b.ppl || (a.ppl === b.ppl && a.bytes < b.bytes);
}

function evalIds(orig: EvalModel, e: SweepEvalText): number[] {
  let ids: number[];
  if (e.tokens) ids = e.tokens;
  else if (e.text !== undefined) {
    if (!orig.tokenizerJson) throw new InputError(`${orig.label} has no tokenizer.json; give the evaluation text as token ids`);
    ids = loadTokenizer(orig.tokenizerJson, orig.tokenizerConfig).encode(e.text);
  } else throw new InputError('no evaluation text: give tokens or text');
  const V = orig.dims.vocab;
  const bad = ids.findIndex((x) => !Number.isInteger(x) || x < 0 || x >= V);
  if (bad >= 0) throw new InputError(`evaluation text: token id ${ids[bad]} at index ${bad} is outside the vocabulary [0, ${V})`);
  if (!Number.isInteger(e.seqlen) || e.seqlen < 2) throw new InputError(`evaluation seqlen ${e.seqlen}: expected an integer ≥ 2`);
  if (!Number.isInteger(e.windows) || e.windows < 1) throw new InputError(`evaluation windows ${e.windows}: expected a positive integer`);
  if (ids.length < e.seqlen) throw new InputError(`the evaluation text (${e.label}) has ${ids.length} tokens, fewer than one window of ${e.seqlen}`);
  return ids;
}

async function scoreSource(source: ModelSource, ids: number[], e: SweepEvalText, signal: AbortSignal | undefined, onWindow?: (d: number, t: number) => void) {
  const m = await openEvalModel(source, signal);
  const model = createQwen2Cpu(m.dims, mapWeights(await loadAllWeights(m, { signal })));
  try {
    return { model: m, ev: await evaluate(model, undefined, ids, e.seqlen, e.windows, { signal, onWindow }) };
  } finally {
    model.dispose();
  }
}

export async function runSweep(opts: SweepOptions): Promise<SweepResult> {
  const t0 = performance.now();
  const { signal, grid } = opts;
  const points = gridPoints(grid);
  checkSweep(opts.settings, grid, opts.calibration !== undefined);
  const n = points.length;
  const progress = (p: Omit<SweepProgress, 'points'>): void => opts.onProgress?.({ ...p, points: n });
  try {
    // The original: opened, scored once.
    progress({ stage: 'reference', point: -1, message: `scoring the original model on ${opts.evalText.label}` });
    const orig = await openEvalModel(opts.source, signal);
    const ids = evalIds(orig, opts.evalText);
    const ref = await scoreSource(opts.source, ids, opts.evalText, signal, (d, t) =>
      progress({ stage: 'reference', point: -1, message: `original model: window ${d}/${t}` }));
    const pplOriginal = ref.ev.pplA;

    let sensitivity: ProjectionSensitivity[] | undefined;
    let sensitivityMs = 0;
    const results: SweepPointResult[] = [];
    let best = -1;
    let kept: SweepResult['kept'];
    for (let i = 0; i < n; i++) {
      throwIfAborted(signal);
      const point = points[i];
      const settings = pointSettings(opts.settings, point);
      const label = pointLabel(point);
      const calibration = usesCalibration(settings) ? opts.calibration : undefined;
      const needsPass = settings.w8Budget > 0 && settings.bits === 4;
      if (needsPass && !sensitivity) {
        progress({ stage: 'sensitivity', point: -1, message: 'W8 sensitivity pass (once for every W8 point)' });
        const ts = performance.now();
        sensitivity = await measureW8Sensitivity({
          source: opts.source, settings, backend: opts.backend, target: opts.target, modelArg: opts.modelArg, localFolder: opts.localFolder,
          maxShardBytes: opts.maxShardBytes, signal, calibration,
          onProgress: (e) => progress({ stage: 'sensitivity', point: -1, message: e.message ?? e.tensorName, pipeline: e }),
        });
        sensitivityMs = performance.now() - ts;
      }
      progress({ stage: 'quantize', point: i, message: `[${i + 1}/${n}] ${label}: quantizing` });
      const sink = createMemorySink(`sweep point ${i + 1} (${label})`);
      const run = await runPipeline({
        source: opts.source, sink, settings, backend: opts.backend, target: opts.target, modelArg: opts.modelArg, localFolder: opts.localFolder,
        maxShardBytes: opts.maxShardBytes, signal, calibration, w8Sensitivity: needsPass ? sensitivity : undefined,
        onProgress: (e) => progress({ stage: 'quantize', point: i, message: `[${i + 1}/${n}] ${label}: ${e.message ?? e.tensorName}`, pipeline: e }),
      });
      progress({ stage: 'score', point: i, message: `[${i + 1}/${n}] ${label}: scoring` });
      const ts = performance.now();
      const scored = await scoreSource(sink.toSource(`${opts.source.label} (${label})`), ids, opts.evalText, signal, (d, t) =>
        progress({ stage: 'score', point: i, message: `[${i + 1}/${n}] ${label}: window ${d}/${t}` }));
      const r: SweepPointResult = {
        index: i, point, settings, label,
        ppl: scored.ev.pplA,
        deltaPpl: scored.ev.pplA - pplOriginal,
        bytes: sink.bytes,
        files: sink.files.size,
        quantizeMs: run.elapsedMs,
        aloneMs: run.elapsedMs + (needsPass ? sensitivityMs : 0),
        scoreMs: performance.now() - ts,
      };
      results.push(r);
      const isBest = best < 0 || better(r, results[best]);
      if (isBest) best = i;
      if (opts.keep === i || (opts.keep === 'best' && isBest)) kept = { index: i, files: sink.files };
      opts.onPoint?.(r);
    }
    return {
      pplOriginal, evalLabel: opts.evalText.label, windows: ref.ev.windows, seqlen: opts.evalText.seqlen, predictions: ref.ev.predictions,
      points: results, best, sensitivityMs, elapsedMs: performance.now() - t0, kept,
    };
  } catch (e) {
    if (signal?.aborted && !(e instanceof CancelledError)) throw new CancelledError();
    throw e;
  }
}

/** What a sweep will cost, before it starts: how many runs of each kind, and the scoring work. */
export interface SweepPlan {
  points: number;
  gptqPoints: number;
  rtnPoints: number;
  /** Whether the W8 sensitivity pass runs (once). */
  sensitivityPass: boolean;
  /** Forward passes of `windows × seqlen` tokens for scoring: the original once, each point once. */
  scoringRuns: number;
}

export function planSweep(base: QuantSettings, grid: SweepGrid): SweepPlan {
  const pts = gridPoints(grid).map((p) => pointSettings(base, p));
  const gptqPoints = pts.filter((s) => s.method === 'gptq').length;
  return {
    points: pts.length, gptqPoints, rtnPoints: pts.length - gptqPoints,
    sensitivityPass: pts.some((s) => s.w8Budget > 0 && s.bits === 4),
    scoringRuns: pts.length + 1,
  };
}

/** The best point first, by perplexity, then size; the table marks `best`. */
export function sweepJson(r: SweepResult): Record<string, unknown> {
  return {
    ppl_original: r.pplOriginal,
    evaluation: { text: r.evalLabel, windows: r.windows, seqlen: r.seqlen, predictions: r.predictions },
    sensitivity_pass_s: r.sensitivityMs / 1000,
    elapsed_s: r.elapsedMs / 1000,
    best: r.best,
    points: r.points.map((p) => ({
      index: p.index, method: p.point.method, codebook: p.point.codebook, w8_budget: p.point.w8Budget,
      ppl: p.ppl, delta_ppl: p.deltaPpl, bytes: p.bytes, files: p.files,
      quantize_s: p.quantizeMs / 1000, alone_s: p.aloneMs / 1000, score_s: p.scoreMs / 1000,
      best: p.index === r.best,
    })),
  };
}
