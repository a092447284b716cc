import type { Backend, Mat, RotationSpec } from '../ports';
import { CancelledError, InputError, throwIfAborted } from '../errors';
import { residualRotation, headRotation } from '../hadamard/rotation';
import { factorHadamardSize } from '../hadamard/factor';
import { parseQwen2Config, type Qwen2Config } from '../qwen2/config';
import { buildPlan, isDerivedHead, type PlanItem, type QuantPlan, type RotationKind } from '../qwen2/plan';
import { chooseScales, gridFor } from '../quant/scales';
import { errorStatsFromRows } from '../quant/metrics';
import type { QuantSettings } from '../settings';
import { decodeToF32, encodeF16, encodeF32 } from '../safetensors/dtype';
import { openSafetensorsModel, type SafetensorsModel } from '../safetensors/model';
import { readFiniteTensorBytes } from '../safetensors/read-tensor';
import { readModelTextFile } from '../text-file';
import { planSafetensorsShards, SafetensorsStreamWriter } from '../safetensors/writer';
import type { BundleSink, ModelSource } from '../ports';
import { bundleConfigJson } from '../bundle/config-json';
import { quantizationConfigJson } from '../bundle/quantization-config';
import { modelCard } from '../bundle/model-card';
import type { RunTarget } from '../link';
import type { ProgressEvent, Phase } from './events';
import { HISTOGRAM_BINS, type TensorReport } from './report';

/** Files copied into the bundle unchanged when the source has them. */
export const PASS_THROUGH_FILES = [
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'vocab.json',
  'merges.txt',
  'special_tokens_map.json',
  'added_tokens.json',
  'LICENSE',
];

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

/** Describe a rotation for the model card / quantization_config: "28·32 (Paley II ⊗ Sylvester)". */
function describeHadamard(spec: RotationSpec | null): string | null {
  if (!spec) return null;
  const pow2 = spec.segment / spec.k;
  const blocks = spec.length / spec.segment;
  const core = spec.k === 1 ? `H${spec.segment} (Sylvester)` : `H${spec.k}⊗H${pow2} = H${spec.segment}`;
  return blocks > 1 ? `${blocks} blocks of ${core}` : core;
}

/** Everything read before streaming starts: config, headers, plan, rotations. */
export interface PreparedRun {
  config: Qwen2Config;
  model: SafetensorsModel;
  plan: QuantPlan;
  residual: RotationSpec | null;
  headsQ: RotationSpec | null;
  headsKV: RotationSpec | null;
}

/** Read config and headers, validate them, and build the plan — no tensor data is read. */
export async function prepareRun(source: ModelSource, settings: QuantSettings, signal?: AbortSignal): Promise<PreparedRun> {
  const files = new Set(await source.listFiles());
  if (!files.has('config.json')) throw new InputError(`no config.json in ${source.label}; expected a Hugging Face Qwen2 model folder`, { file: 'config.json' });
  const config = parseQwen2Config(await readModelTextFile(source, 'config.json', signal));
  const model = await openSafetensorsModel(source, signal);
  const plan = buildPlan(config, settings, model.tensors);
  let residual: RotationSpec | null = null;
  let headsQ: RotationSpec | null = null;
  let headsKV: RotationSpec | null = null;
  if (settings.rotation !== 'none') {
    if (settings.rotation === 'block' && config.hidden % settings.blockSize !== 0) {
      throw new InputError(`block size ${settings.blockSize} does not divide hidden_size ${config.hidden}`, { file: 'config.json' });
    }
    factorHadamardSize(settings.rotation === 'full' ? config.hidden : settings.blockSize);
    factorHadamardSize(config.headDim);
    residual = residualRotation(config.hidden, settings.rotation, settings.blockSize, settings.seed);
    headsQ = headRotation(config.headDim, config.heads, settings.seed);
    headsKV = headRotation(config.headDim, config.kvHeads, settings.seed);
  }
  return { config, model, plan, residual, headsQ, headsKV };
}

/**
 * The streaming job: read each tensor, fuse γ, rotate, quantize, write — one tensor in memory
 * at a time (plus the small norm vectors). On any failure or cancellation the sink is aborted,
 * so nothing half-written looks like a bundle.
 */
export async function runPipeline(opts: PipelineOptions): Promise<PipelineResult> {
  const { source, sink, settings, backend, signal } = opts;
  const t0 = performance.now();
  let bytesRead = 0;
  let bytesWritten = 0;
  let bytesToRead = 0;
  let bytesToWrite = 0;
  let tensorIndex = 0;
  let tensorCount = 0;
  let tensorName = '';
  const emit = (phase: Phase, message?: string): void => {
    opts.onProgress?.({
      phase, tensorIndex, tensorCount, tensorName, bytesRead, bytesToRead, bytesWritten, bytesToWrite,
      elapsedMs: performance.now() - t0, message,
    });
  };
  const written: { path: string; size: number }[] = [];
  const countingSink: BundleSink = {
    label: sink.label,
    async createFile(path, size) {
      const w = await sink.createFile(path, size);
      let n = 0;
      return {
        async write(chunk) { throwIfAborted(signal); await w.write(chunk); n += chunk.length; bytesWritten += chunk.length; },
        async close() { await w.close(); written.push({ path, size: n }); },
      };
    },
    finalize: () => sink.finalize(),
    abort: (r) => sink.abort(r),
  };

  // A GPU upload started for the next tensor (released here if the run stops before using it).
  let uploadAhead: { name: string; mat: Promise<Mat> } | null = null;
  try {
    emit('prepare', `reading config and headers from ${source.label}`);
    const prep = await prepareRun(source, settings, signal);
    const { config, model, plan } = prep;
    tensorCount = plan.items.length;
    const specs = plan.items.flatMap((it) => it.outputs);
    const layout = planSafetensorsShards(specs, { maxShardBytes: opts.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES });
    bytesToWrite = layout.files.reduce((s, f) => s + f.size, 0);
    for (const it of plan.items) {
      if (isDerivedHead(it)) continue;
      for (const name of it.biasSource ? [it.source, it.biasSource] : [it.source]) {
        const t = model.tensors.get(name)!;
        bytesToRead += t.info.end - t.info.begin;
      }
    }

    type SourceBytes = { bytes: Uint8Array; dtype: 'F32' | 'F16' | 'BF16' };
    // Reads started ahead of time: the next tensor's bytes arrive while this one is computed.
    const reading = new Map<string, Promise<SourceBytes>>();
    const startRead = (name: string): Promise<SourceBytes> => {
      let p = reading.get(name);
      if (!p) {
        const t = model.tensors.get(name)!;
        p = readFiniteTensorBytes(model.files.get(t.file)!.source, t.info, signal).then((bytes) => {
          bytesRead += bytes.length;
          return { bytes, dtype: t.info.dtype };
        });
        p.catch(() => undefined); // surfaced when awaited; a cancelled read-ahead is not an unhandled rejection
        reading.set(name, p);
      }
      return p;
    };
    const readSource = (name: string): Promise<SourceBytes> => {
      const p = startRead(name);
      reading.delete(name);
      return p;
    };
    const readAhead = (it: PlanItem | undefined): void => {
      if (!it || isDerivedHead(it)) return;
      startRead(it.source);
      if (it.biasSource) startRead(it.biasSource);
    };

    if (source.prefetch) {
      // Tell a streaming source what will be read, per file, sorted by offset so adjacent tensors
      // coalesce into large requests (the plan already reads each shard almost in order). The
      // final norm of a tied, rotated model is read first but sits at the end of the last shard:
      // it stays a small direct read instead of pinning that shard's last block for the run.
      const ranges = new Map<string, { offset: number; length: number }[]>();
      const want = (name: string): void => {
        const t = model.tensors.get(name)!;
        if (!ranges.has(t.file)) ranges.set(t.file, []);
        ranges.get(t.file)!.push({ offset: t.info.begin, length: t.info.end - t.info.begin });
      };
      const firstGroupNorm = plan.items.findIndex((it) => it.kind !== 'norm');
      plan.items.forEach((it, i) => {
        if (isDerivedHead(it)) return;
        if (it.name === 'model.norm.weight' && i < firstGroupNorm) return;
        want(it.source);
        if (it.biasSource) want(it.biasSource);
      });
      for (const [file, r] of ranges) await source.prefetch(file, r.sort((a, b) => a.offset - b.offset));
    }

    // Norm gains, kept (they are small) for fusion into the linears that follow them in the plan.
    const gammas = new Map<string, Float32Array>();

    const writer = new SafetensorsStreamWriter(countingSink, layout);
    const outDtype = plan.outputDtype;
    const encode = (v: Float32Array): Uint8Array => (outDtype === 'F16' ? encodeF16(v) : encodeF32(v));
    const reports: TensorReport[] = [];
    const rotationFor = (kind: RotationKind | null, length: number): RotationSpec | null => {
      if (!kind) return null;
      if (kind === 'residual') return prep.residual;
      const spec = length === prep.headsQ!.length ? prep.headsQ : prep.headsKV;
      if (!spec || spec.length !== length) throw new Error(`no head rotation of length ${length}`);
      return spec;
    };
    const { qmin, qmax } = settings.bits === 16 ? { qmin: 0, qmax: 0 } : gridFor(settings.bits);
    // Write-behind: a tensor's outputs are written while the next one is computed; at most one
    // tensor's output waits in memory (the writer itself takes one call at a time).
    let writing: Promise<void> = Promise.resolve();
    const queueWrites = async (list: [string, Uint8Array][]): Promise<void> => {
      await writing;
      writing = (async () => {
        for (const [name, bytes] of list) await writer.writeTensor(name, bytes);
      })();
      writing.catch(() => undefined); // surfaced by the next await of `writing`
    };
    let embeddingCopy: Mat | null = null;
    const gammaFor = (name: string): Float32Array => {
      const g = gammas.get(name);
      if (!g) throw new Error(`plan order: ${name} is needed before it is read`);
      return g;
    };

    for (tensorIndex = 0; tensorIndex < plan.items.length; tensorIndex++) {
      throwIfAborted(signal);
      const item = plan.items[tensorIndex];
      tensorName = item.name;
      emit('read');
      if (item.kind === 'norm') {
        const { bytes, dtype } = await readSource(item.source);
        const g = decodeToF32(bytes, dtype);
        gammas.set(item.source, g);
        await queueWrites([[item.name, encode(item.writeOnes ? new Float32Array(g.length).fill(1) : g)]]);
        reports.push(normReport(item, g));
        opts.onTensor?.(reports[reports.length - 1]);
        continue;
      }
      let w0: Mat;
      if (isDerivedHead(item)) {
        if (!embeddingCopy) throw new Error('tied LM head needs the embedding first');
        w0 = embeddingCopy;
        embeddingCopy = null;
      } else if (uploadAhead?.name === item.source) {
        w0 = await uploadAhead.mat;
        uploadAhead = null;
      } else {
        const { bytes, dtype } = await readSource(item.source);
        w0 = await backend.upload(bytes, dtype, item.rows, item.cols);
      }
      const following = plan.items[tensorIndex + 1];
      readAhead(following);
      if (backend.name === 'webgpu' && following && following.kind !== 'norm' && !isDerivedHead(following)) {
        // On a GPU the next tensor's upload and decode are queued now and overlap this one's
        // compute and readbacks (the CPU backend computes synchronously, so it gains nothing).
        const ahead = readSource(following.source).then(({ bytes, dtype }) => backend.upload(bytes, dtype, following.rows, following.cols));
        ahead.catch(() => undefined); // surfaced when awaited
        uploadAhead = { name: following.source, mat: ahead };
      }
      if (item.kind === 'embedding' && following && isDerivedHead(following)) {
        embeddingCopy = await backend.clone(w0);
      }
      const result = await processMatrix(backend, item, w0, {
        gamma: item.fuseNorm ? gammaFor(item.fuseNorm) : null,
        rowRot: rotationFor(item.rotateRows, item.cols),
        colRot: rotationFor(item.rotateCols, item.rows),
        settings, qmin, qmax, outDtype,
        phase: (p) => emit(p),
      });
      const outputs: [string, Uint8Array][] = [[item.name, result.weightBytes]];
      if (item.biasSource || item.quantize && item.kind === 'projection') {
        let bias: Float32Array;
        if (item.biasSource) {
          const { bytes, dtype } = await readSource(item.biasSource);
          bias = decodeToF32(bytes, dtype);
          const rot = rotationFor(item.rotateBias, item.rows);
          if (rot) {
            const m = await backend.upload(new Uint8Array(bias.buffer, bias.byteOffset, bias.byteLength), 'F32', item.rows, 1);
            await backend.rotateColumns(m, rot);
            bias = decodeToF32(await backend.read(m, 'F32'), 'F32');
            backend.release(m);
          }
        } else {
          bias = new Float32Array(item.rows); // ANEMLL requires a bias on all 7 projections
        }
        outputs.push([item.outputs[1].name, encode(bias)]);
      }
      if (item.quantize && item.kind === 'projection') {
        const s = result.scales!;
        outputs.push(
          [item.outputs[2].name, encode(new Float32Array(item.cols).fill(s.inputScale))],
          [item.outputs[3].name, encode(s.outputScales)],
          [item.outputs[4].name, encode(Float32Array.from({ length: qmax - qmin + 1 }, (_, i) => qmin + i))],
        );
      }
      emit('write');
      await queueWrites(outputs);
      reports.push(result.report);
      opts.onTensor?.(result.report);
    }
    tensorIndex = tensorCount;
    await writing;
    await writer.finish();

    emit('finalize', 'writing config, tokenizer and model card');
    const writeText = async (path: string, text: string): Promise<void> => {
      const bytes = new TextEncoder().encode(text);
      const w = await countingSink.createFile(path, bytes.length);
      await w.write(bytes);
      await w.close();
    };
    await writeText('config.json', bundleConfigJson(config.raw, plan.writesLmHead, outDtype));
    const qc = {
      settings, quantizedCount: plan.quantizedCount, rotated: plan.rotated,
      residualHadamard: describeHadamard(prep.residual), headHadamard: describeHadamard(prep.headsQ ? { ...prep.headsQ, length: prep.headsQ.segment } : null),
      sourceRepo: opts.target.model, sourceRevision: opts.target.revision ?? null,
    };
    await writeText('quantization_config.json', quantizationConfigJson(qc));
    const available = new Set(await source.listFiles());
    for (const f of PASS_THROUGH_FILES) {
      if (!available.has(f)) continue;
      const src = await source.open(f);
      const bytes = src.size === 0 ? new Uint8Array(0) : await src.read(0, src.size, signal);
      const w = await countingSink.createFile(f, bytes.length);
      await w.write(bytes);
      await w.close();
    }
    await writeText('README.md', modelCard({
      target: opts.target, modelArg: opts.modelArg ?? opts.target.model, settings, reports,
      quantizedCount: plan.quantizedCount, rotated: plan.rotated, residualHadamard: qc.residualHadamard,
    }));
    throwIfAborted(signal);
    await sink.finalize();
    emit('done');
    return {
      files: written, reports,
      plan: { quantizedCount: plan.quantizedCount, rotated: plan.rotated, writesLmHead: plan.writesLmHead, tensorCount },
      config, bytesRead, bytesWritten, elapsedMs: performance.now() - t0, backend: backend.description,
    };
  } catch (err) {
    uploadAhead?.mat.then((m) => backend.release(m), () => undefined);
    await sink.abort(err).catch(() => undefined);
    if (signal?.aborted && !(err instanceof CancelledError)) throw new CancelledError();
    throw err;
  }
}

function normReport(item: PlanItem, g: Float32Array): TensorReport {
  let m = 0;
  for (const v of g) m = Math.max(m, Math.abs(v));
  return {
    name: item.name, kind: 'norm', layer: item.layer, proj: null, shape: [g.length], quantized: false,
    transformed: item.writeOnes, absmaxBefore: m, absmaxAfter: item.writeOnes ? 1 : m,
  };
}

interface MatrixOptions {
  gamma: Float32Array | null;
  rowRot: RotationSpec | null;
  colRot: RotationSpec | null;
  settings: QuantSettings;
  qmin: number;
  qmax: number;
  outDtype: 'F16' | 'F32';
  phase: (p: Phase) => void;
}

const maxOf = (a: Float32Array): number => a.reduce((m, v) => (v > m ? v : m), 0);

/**
 * One matrix: original stats, fusion + rotation, baseline RTN (on the original), quantization
 * of the transformed weights, histograms and errors. Consumes (releases) `w0`.
 */
async function processMatrix(
  backend: Backend,
  item: PlanItem,
  w0: Mat,
  o: MatrixOptions,
): Promise<{ weightBytes: Uint8Array; report: TensorReport; scales?: Awaited<ReturnType<typeof chooseScales>> }> {
  const { settings, qmin, qmax } = o;
  const transformed = o.gamma !== null || o.rowRot !== null || o.colRot !== null;
  const toRelease: Mat[] = [w0];
  try {
    const rowMax0 = await backend.rowAbsMax(w0);
    let w = w0;
    let rowMax = rowMax0;
    if (transformed) {
      o.phase('transform');
      w = await backend.clone(w0);
      toRelease.push(w);
      if (o.gamma) await backend.scaleColumns(w, o.gamma);
      if (o.rowRot) await backend.rotateRows(w, o.rowRot);
      if (o.colRot) await backend.rotateColumns(w, o.colRot);
      rowMax = await backend.rowAbsMax(w);
    }
    const absmaxBefore = maxOf(rowMax0);
    const absmaxAfter = maxOf(rowMax);
    const range = Math.max(absmaxBefore, absmaxAfter) || 1;
    const report: TensorReport = {
      name: item.name, kind: item.kind, layer: item.layer, proj: item.proj, shape: [item.rows, item.cols],
      quantized: item.quantize, transformed, absmaxBefore, absmaxAfter,
    };
    const histBefore = await backend.histogram(w0, range, HISTOGRAM_BINS);
    const histAfter = transformed ? await backend.histogram(w, range, HISTOGRAM_BINS) : histBefore;
    report.histogram = { range, before: histBefore, after: histAfter };
    const releaseOriginal = (): void => {
      // The original is done with once its histogram and baseline exist: free it before the
      // quantized copy is made (the embedding is the largest tensor by far).
      if (!transformed) return;
      backend.release(w0);
      toRelease.splice(toRelease.indexOf(w0), 1);
    };

    if (!item.quantize) {
      releaseOriginal();
      const weightBytes = await backend.read(w, o.outDtype);
      return { weightBytes, report };
    }
    o.phase('quantize');
    const bits = settings.bits as 4 | 8;
    const roundToF16 = o.outDtype === 'F16';
    if (transformed) {
      // Baseline: plain RTN of the original, unfused weights, same scheme and clip.
      const bs = await chooseScales(backend, w0, rowMax0, bits, settings.scheme, settings.clip);
      const bq = await backend.quantize(w0, bs.rowStep, bs.rowInv, qmin, qmax, roundToF16);
      const be = await backend.rowSquaredErrors(w0, bq.mat);
      backend.release(bq.mat);
      report.baselineError = errorStatsFromRows(be.diff, be.ref);
    }
    releaseOriginal();
    const scales = await chooseScales(backend, w, rowMax, bits, settings.scheme, settings.clip);
    const q = await backend.quantize(w, scales.rowStep, scales.rowInv, qmin, qmax, roundToF16);
    toRelease.push(q.mat);
    const e = await backend.rowSquaredErrors(w, q.mat);
    report.error = errorStatsFromRows(e.diff, e.ref);
    if (!transformed) report.baselineError = report.error;
    report.histogram.quantized = await backend.histogram(q.mat, range, HISTOGRAM_BINS);
    report.codeCounts = q.codeCounts;
    report.inputScale = scales.inputScale;
    report.outputScaleMin = scales.outputScales.reduce((m, v) => Math.min(m, v), Infinity);
    report.outputScaleMax = maxOf(scales.outputScales);
    report.alphaMean = scales.alphas.reduce((s, v) => s + v, 0) / scales.alphas.length;
    const weightBytes = await backend.read(q.mat, o.outDtype);
    return { weightBytes, report, scales };
  } finally {
    for (const m of toRelease) backend.release(m);
  }
}

