import type { Backend, BundleSink, Mat, ModelSource } from '../ports';
import { CancelledError, throwIfAborted } from '../errors';
import type { Qwen2Config } from '../qwen2/config';
import { isDerivedHead } from '../qwen2/plan';
import type { QuantSettings } from '../settings';
import { decodeToF32 } from '../safetensors/dtype';
import { planSafetensorsShards } from '../safetensors/writer';
import type { RunTarget } from '../link';
import type { ProgressEvent, Phase } from './events';
import { writeBundleFiles } from './finalize';
import { CountingSink, matrixOutputs, TensorOutputs } from './outputs';
import { prepareRun, rotationFor } from './prepare';
import { processMatrix } from './process-tensor';
import type { TensorReport } from './report';
import { normReport } from './tensor-report';
import { TensorReader } from './tensor-reader';
import { transformBias } from './transform';

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
  maxShardBytes?: number;
  signal?: AbortSignal;
  onProgress?: (e: ProgressEvent) => void;
  /** Each tensor's report as soon as it is done (the app streams them into its table). */
  onTensor?: (r: TensorReport) => void;
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
  const { source, settings, backend, signal } = opts;
  const t0 = performance.now();
  const sink = new CountingSink(opts.sink, signal);
  let reader: TensorReader | null = null;
  const at = { tensorIndex: 0, tensorCount: 0, tensorName: '', bytesToRead: 0, bytesToWrite: 0 };
  const emit = (phase: Phase, message?: string): void => {
    opts.onProgress?.({
      phase, ...at, bytesRead: reader?.bytesRead ?? 0, bytesWritten: sink.bytesWritten,
      elapsedMs: performance.now() - t0, message,
    });
  };
  try {
    emit('prepare', `reading config and headers from ${source.label}`);
    const prep = await prepareRun(source, settings, signal);
    const { config, model, plan } = prep;
    at.tensorCount = plan.items.length;
    const layout = planSafetensorsShards(plan.items.flatMap((it) => it.outputs), { maxShardBytes: opts.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES });
    at.bytesToWrite = layout.files.reduce((s, f) => s + f.size, 0);
    at.bytesToRead = TensorReader.bytesToRead(model, plan);
    reader = new TensorReader(model, backend, signal);
    await reader.announce(source, plan);
    const outputs = new TensorOutputs(sink, layout, plan.outputDtype);
    const reports: TensorReport[] = [];
    const report = (r: TensorReport): void => {
      reports.push(r);
      opts.onTensor?.(r);
    };
    // Norm gains, kept (they are small) for fusion into the linears that follow them in the plan.
    const gammas = new Map<string, Float32Array>();
    // A tied model's head starts from a copy of the embedding, made while it is on the backend.
    let embeddingCopy: Mat | null = null;

    for (let i = 0; i < plan.items.length; i++) {
      throwIfAborted(signal);
      const item = plan.items[i];
      at.tensorIndex = i;
      at.tensorName = item.name;
      emit('read');
      if (item.kind === 'norm') {
        const { bytes, dtype } = await reader.read(item.source);
        const g = decodeToF32(bytes, dtype);
        gammas.set(item.source, g);
        await outputs.queue([[item.name, outputs.encode(item.writeOnes ? new Float32Array(g.length).fill(1) : g)]]);
        report(normReport(item, g));
        continue;
      }
      let w0: Mat;
      if (isDerivedHead(item)) {
        if (!embeddingCopy) throw new Error('tied LM head needs the embedding first');
        w0 = embeddingCopy;
        embeddingCopy = null;
      } else {
        w0 = await reader.upload(item);
      }
      const next = plan.items[i + 1];
      reader.readAhead(next);
      if (item.kind === 'embedding' && next && isDerivedHead(next)) embeddingCopy = await backend.clone(w0);
      let gamma: Float32Array | null = null;
      if (item.fuseNorm) {
        gamma = gammas.get(item.fuseNorm) ?? null;
        if (!gamma) throw new Error(`plan order: ${item.fuseNorm} is needed before it is read`);
      }
      const result = await processMatrix(backend, item, w0, {
        gamma, rowRot: rotationFor(prep, item.rotateRows, item.cols), colRot: rotationFor(prep, item.rotateCols, item.rows),
      }, plan.outputDtype, (p) => emit(p));
      let bias: Float32Array | null = null;
      if (item.biasSource) {
        const { bytes, dtype } = await reader.read(item.biasSource);
        bias = await transformBias(backend, decodeToF32(bytes, dtype), rotationFor(prep, item.rotateBias, item.rows));
      }
      emit('write');
      await outputs.queue(matrixOutputs(item, result, bias, outputs.encode));
      report(result.report);
    }
    at.tensorIndex = at.tensorCount;
    await outputs.finish();

    emit('finalize', 'writing config, tokenizer and model card');
    await writeBundleFiles({ source, sink, prep, settings, reports, target: opts.target, modelArg: opts.modelArg ?? opts.target.model, signal });
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
    await sink.abort(err).catch(() => undefined);
    if (signal?.aborted && !(err instanceof CancelledError)) throw new CancelledError();
    throw err;
  }
}
