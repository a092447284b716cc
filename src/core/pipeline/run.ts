import type { Backend, BundleSink, ModelSource, SpoolFactory } from '../ports';
import { CancelledError, InputError, throwIfAborted } from '../errors';
import { chooseW8Set, w8SetChooser, type ProjectionSensitivity } from '../quant/mixed-precision';
import type { PlanOptions } from '../qwen2/plan';
import type { Qwen2Config } from '../qwen2/config';
import type { QuantSettings } from '../settings';
import { decodeToF32 } from '../safetensors/dtype';
import { planSafetensorsShards } from '../safetensors/writer';
import type { LocalFolder } from '../bundle/model-card';
import type { RunTarget } from '../link';
import { CalibrationStream, checkCalibration, type PipelineCalibration } from './calibration';
import type { ProgressEvent, Phase } from './events';
import { writeBundleFiles } from './finalize';
import { processLayerWithGptq } from './gptq-layer';
import { CountingSink, TensorOutputs } from './outputs';
import { prepareRun } from './prepare';
import { processMatrixItem, processNormItem } from './process-item';
import type { TensorReport } from './report';
import type { RunContext } from './run-context';
import { TensorReader } from './tensor-reader';
import { DEFAULT_TILE_BYTES, isTiledItem, processTiledItem } from './tiled';

export { PASS_THROUGH_FILES } from './finalize';
export { prepareRun, type PreparedRun } from './prepare';

/** Default shard threshold: one model.safetensors up to 2 GB, HF-named shards above. */
export const DEFAULT_MAX_SHARD_BYTES = 2_000_000_000;

export interface PipelineOptions {
  source: ModelSource;
  sink: BundleSink;
  settings: QuantSettings;
  backend: Backend;
  /** How the run is described in the model card and its reproduction link. */
  target: RunTarget;
  /** The CLI `--model` argument for the card's reproduction command (default: target.model). */
  modelArg?: string;
  /** The input was a local folder (not on the Hub): its name and file hashes, so the card names it honestly. */
  localFolder?: LocalFolder;
  maxShardBytes?: number;
  signal?: AbortSignal;
  onProgress?: (e: ProgressEvent) => void;
  /** Each tensor's report as soon as it is done (the app streams them into its table). */
  onTensor?: (r: TensorReport) => void;
  /** Calibration data: required by method 'gptq'. */
  calibration?: PipelineCalibration;
  /**
   * Matrices above this many bytes of f32 go through every stage in row tiles of about this
   * size (default DEFAULT_TILE_BYTES; Infinity: every tensor whole). The bytes written do not
   * depend on it.
   */
  tileBytes?: number;
  /** Scratch space for tiled matrices (Node: temp files); absent: tiles are re-read from the source. */
  spool?: SpoolFactory;
  /**
   * The W8 budget's sensitivity pass, already measured by measureW8Sensitivity on the same model,
   * calibration and settings (the pass ignores method, codebook and budget, so one measurement
   * serves every point of a settings sweep). Absent: measured here when the budget needs it.
   */
  w8Sensitivity?: readonly ProjectionSensitivity[];
}

export interface PipelineResult {
  files: { path: string; size: number }[];
  reports: TensorReport[];
  plan: { quantizedCount: number; rotated: boolean; writesLmHead: boolean; tensorCount: number };
  config: Qwen2Config;
  bytesRead: number;
  bytesWritten: number;
  elapsedMs: number;
  backend: string;
}

/**
 * The streaming job, in stages: prepare (config, headers, plan, rotations) → for each plan item
 * read → process (stats, transform, scales, quantize, report) → write behind → finalize (the
 * other bundle files, then the sink verifies). One tensor in memory at a time (plus the small
 * norm vectors). On any failure or cancellation the sink is aborted, so nothing half-written
 * looks like a bundle.
 */
export async function runPipeline(opts: PipelineOptions): Promise<PipelineResult> {
  const s = opts.settings;
  if (s.w8Budget > 0 && s.bits === 4) {
    if (!opts.calibration) {
      throw new InputError('--w8-budget keeps the projections most sensitive on calibration data at 8 bits: give calibration data (--calib), or use --bits-override');
    }
    const items = opts.w8Sensitivity ?? await measureW8Sensitivity(opts);
    const w8 = chooseW8Set(items, s.w8Budget);
    return runOnce(opts, { choose: w8SetChooser(w8.names) }, false);
  }
  return runOnce(opts, {}, false);
}

const discardSink: BundleSink = {
  label: 'sensitivity pass (nothing kept)',
  createFile: async () => ({ write: async () => undefined, close: async () => undefined }),
  finalize: async () => undefined,
  abort: async () => undefined,
};

/**
 * Mixed precision by calibration sensitivity: a first pass quantizes every projection at 4 bits
 * (RTN, integer grid, earlier layers quantized) through the calibration stream and measures, for
 * each one alone, the relative error it causes in its layer's output (gptq-layer.ts
 * measureLayerSensitivity); the most sensitive are kept at 8 bits while their parameters stay
 * within the budget (SPEC §4: most of the gain on outlier weights). On the outlier test model this
 * ranking beats the per-tensor tr(ΔHΔᵀ)/tr(WHWᵀ): it sees what a projection's error does after
 * attention's softmax and the MLP's gate.
 */
export async function measureW8Sensitivity(opts: Omit<PipelineOptions, 'sink'>): Promise<ProjectionSensitivity[]> {
  if (!opts.calibration) throw new InputError('the W8 sensitivity pass needs calibration data (--calib)');
  const settings: QuantSettings = { ...opts.settings, w8Budget: 0, method: 'rtn', codebook: 'uniform', inputScales: 'uniform' };
  const measured: ProjectionSensitivity[] = [];
  const pass = await runOnce({
    ...opts, settings, sink: discardSink, onTensor: undefined,
    onProgress: (e) => opts.onProgress?.({ ...e, phase: e.phase === 'done' ? 'calibrate' : e.phase, message: `sensitivity pass: ${e.message ?? e.tensorName}` }),
  }, {}, (s) => measured.push(s));
  const at4 = new Set(pass.reports.filter((r) => r.kind === 'projection' && r.bits === 4).map((r) => r.name));
  return measured.filter((s) => at4.has(s.name));
}

/** `measure`: the W8 budget's measuring pass (forward plan order, calibration stream, sensitivities reported to it). */
async function runOnce(opts: PipelineOptions, planOptions: PlanOptions, measure: ((s: ProjectionSensitivity) => void) | false): Promise<PipelineResult> {
  const { source, settings, backend, signal } = opts;
  const t0 = performance.now();
  const sink = new CountingSink(opts.sink, signal);
  let reader: TensorReader | null = null;
  let stream: CalibrationStream | null = null;
  const at = { tensorIndex: 0, tensorCount: 0, tensorName: '', bytesToRead: 0, bytesToWrite: 0 };
  const emit = (phase: Phase, message?: string): void => {
    opts.onProgress?.({
      phase, ...at, bytesRead: reader?.bytesRead ?? 0, bytesWritten: sink.bytesWritten,
      elapsedMs: performance.now() - t0, message,
    });
  };
  try {
    if (settings.method === 'gptq' && settings.bits !== 16 && !opts.calibration) {
      throw new InputError('method gptq needs calibration data: give --calib (a calib.json, a text file or a Hub dataset), or choose method rtn');
    }
    emit('prepare', `reading config and headers from ${source.label}`);
    // Fitted input scales use calibration when it is given (Hessian-weighted fit), even with RTN.
    const fittedWithCalibration = settings.inputScales === 'fitted' && settings.bits !== 16 && opts.calibration !== undefined;
    const prep = await prepareRun(source, settings, signal, measure || fittedWithCalibration ? { ...planOptions, order: 'forward' } : planOptions);
    const { config, model, plan } = prep;
    const calibration = measure || fittedWithCalibration || plan.items.some((it) => it.quant?.method === 'gptq') ? opts.calibration ?? null : null;
    if (calibration) checkCalibration(calibration, config);
    at.tensorCount = plan.items.length;
    const layout = planSafetensorsShards(plan.items.flatMap((it) => it.outputs), { maxShardBytes: opts.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES });
    at.bytesToWrite = layout.files.reduce((s, f) => s + f.size, 0);
    at.bytesToRead = TensorReader.bytesToRead(model, plan);
    const tileBytes = opts.tileBytes ?? DEFAULT_TILE_BYTES;
    if (!(tileBytes > 0)) throw new InputError(`tile size must be positive, got ${tileBytes} bytes`);
    const tiled = (it: typeof plan.items[number]): boolean => isTiledItem(it, tileBytes);
    reader = new TensorReader(model, backend, signal, tiled);
    await reader.announce(source, plan);
    const reports: TensorReport[] = [];
    const ctx: RunContext = {
      backend, prep, settings, reader, signal, tileBytes, spool: opts.spool,
      outputs: new TensorOutputs(sink, layout, plan.outputDtype),
      gammas: new Map(), embeddingCopy: null, emit,
      report: (r) => { reports.push(r); opts.onTensor?.(r); },
      at: (i) => { at.tensorIndex = i; at.tensorName = plan.items[i].name; },
      ...(measure ? { sensitivity: measure } : {}),
    };

    for (let i = 0; i < plan.items.length;) {
      throwIfAborted(signal);
      const item = plan.items[i];
      if (stream && item.layer !== null) {
        // A whole layer at a time: its calibration inputs, then GPTQ, then its quantized outputs.
        const indices: number[] = [];
        while (i < plan.items.length && plan.items[i].layer === item.layer) indices.push(i++);
        await processLayerWithGptq(ctx, stream, item.layer, indices);
        continue;
      }
      ctx.at(i);
      emit('read');
      if (item.kind === 'norm') {
        await processNormItem(ctx, item);
      } else {
        const keepWeight = calibration !== null && item.kind === 'embedding';
        const weightBytes = tiled(item) ? (await processTiledItem(ctx, i, keepWeight)).weightBytes : (await processMatrixItem(ctx, i)).weightBytes;
        if (keepWeight) {
          // The calibration stream starts from the embedding as the bundle stores it.
          emit('calibrate', `embedding ${calibration.samples.length} calibration samples`);
          stream = await CalibrationStream.start(calibration, config, decodeToF32(weightBytes!, plan.outputDtype), signal);
        }
      }
      i++;
    }
    at.tensorIndex = at.tensorCount;
    await ctx.outputs.finish();
    await stream?.dispose();
    stream = null;

    emit('finalize', 'writing config, tokenizer and model card');
    await writeBundleFiles({
      source, sink, prep, settings, reports, target: opts.target, modelArg: opts.modelArg ?? opts.target.model, localFolder: opts.localFolder, signal,
      calibration: calibration ? { source: calibration.source, samples: calibration.samples, sha256: calibration.sha256, spec: calibration.spec } : null,
    });
    throwIfAborted(signal);
    await sink.finalize();
    emit('done');
    return {
      files: sink.written, reports,
      plan: { quantizedCount: plan.quantizedCount, rotated: plan.rotated, writesLmHead: plan.writesLmHead, tensorCount: at.tensorCount },
      config, bytesRead: reader.bytesRead, bytesWritten: sink.bytesWritten, elapsedMs: performance.now() - t0, backend: backend.description,
    };
  } catch (err) {
    reader?.dispose();
    await stream?.dispose().catch(() => undefined);
    await sink.abort(err).catch(() => undefined);
    if (signal?.aborted && !(err instanceof CancelledError)) throw new CancelledError();
    throw err;
  }
}
