/**
 * The pipeline worker's handler: opens sources and sinks from plain descriptions, runs the
 * pipeline with an AbortController it owns (so Cancel works while the page stays responsive),
 * streams progress (throttled, with the measured rate and ETA) and per-tensor reports to the
 * page, and hands the finished zip back. src/worker/pipeline.worker.ts exposes it over comlink.
 */
import * as Comlink from 'comlink';
import { unzipSync } from 'fflate';
import type { Backend } from '../core/ports';
import { CancelledError, InputError } from '../core/errors';
import { runPipelineWithRestarts } from '../core/pipeline/restart';
import { formatCalibSummary, formatLayerSummary } from '../core/pipeline/report';
import { usesCalibration } from '../core/link';
import type { PipelineCalibration } from '../core/pipeline/calibration';
import { buildPipelineCalibration } from '../eval/gptq-calibration';
import { RunMeter, Throttle } from '../core/progress';
import { preflight } from '../core/pipeline/preflight';
import type { QuantSettings } from '../core/settings';
import type { BundleSink } from '../core/ports';
import { COMPLETE_MARKER, createDirectorySink, createOpfsSink } from '../sinks/handle-sink';
import { createZipSink } from '../sinks/zip-sink';
import type { HubProgress } from '../sources/hub/progress';
import { openBackend } from './backend';
import { compareBlockSizes } from './compare';
import type {
  BackendChoice, Outcome, PipelineWorkerApi, Preflight, RunCallbacks, RunProgress, RunRequest, RunResult, SinkSpec, SourceSpec, WorkerCapabilities, WorkerError,
} from './protocol';
import { openSource, type OpenedSource } from './sources';
import { Spool } from './spool';
import { Sha256 } from '../sinks/sha256';
import type { PathedFile } from '../sources/files/files-source';
import { calibrateBackend } from './calibrate';
import type { BackendCalibration } from '../core/estimate';
import { cancelQuality, checkDroppedPair, checkLastRun, forgetRun, rememberRun } from './quality';
import { advise, cancelAdvice } from './advise';

/** Adapters that are software rasterisers (their WebGPU is far slower than the CPU path). */
export const SOFTWARE_ADAPTER = /swiftshader|llvmpipe|lavapipe|software|basic render/i;

/** Progress messages at most this often (phase changes always go through). */
export const PROGRESS_INTERVAL_MS = 100;

/** What the handler calls out to; tests replace the pipeline, the source and the backend. */
export interface WorkerDeps {
  openSource: typeof openSource;
  openBackend: typeof openBackend;
  runPipeline: typeof runPipelineWithRestarts;
  /** Milliseconds, for the progress throttle and meter. */
  now: () => number;
}

const defaultDeps: WorkerDeps = {
  openSource,
  openBackend,
  runPipeline: runPipelineWithRestarts,
  now: () => performance.now(),
};

function toWorkerError(e: unknown): WorkerError {
  if (e instanceof Error) {
    const w: WorkerError = { name: e.name, message: e.message };
    if (e instanceof InputError) {
      if (e.file) w.file = e.file;
      if (e.tensor) w.tensor = e.tensor;
    }
    return w;
  }
  return { name: 'Error', message: String(e) };
}

/**
 * Errors travel as data (comlink keeps only an Error's name and message, and InputError's file
 * and tensor matter to the page). `transfer` names buffers to move rather than copy.
 */
async function guarded<T extends object>(f: () => Promise<T>, transfer?: (v: T) => Transferable[]): Promise<Outcome<T>> {
  try {
    const v = await f();
    const out: Outcome<T> = { ok: true, ...v };
    return transfer ? Comlink.transfer(out, transfer(v)) : out;
  } catch (e) {
    return { ok: false, error: toWorkerError(e) };
  }
}

/** Passes everything through to `sink`, keeping a copy of one small file (the README, for the page). */
function withCopyOf(sink: BundleSink, path: string, keep: (bytes: Uint8Array) => void): BundleSink {
  return {
    label: sink.label,
    async createFile(p, size) {
      const w = await sink.createFile(p, size);
      if (p !== path) return w;
      const parts: Uint8Array[] = [];
      return {
        async write(chunk) {
          parts.push(chunk.slice());
          await w.write(chunk);
        },
        async close() {
          await w.close();
          const all = new Uint8Array(parts.reduce((n, c) => n + c.length, 0));
          let o = 0;
          for (const c of parts) { all.set(c, o); o += c.length; }
          keep(all);
        },
      };
    },
    finalize: () => sink.finalize(),
    abort: (r) => sink.abort(r),
  };
}

async function makeSink(spec: SinkSpec, spool: Spool): Promise<BundleSink> {
  if (spec.kind === 'zip') {
    spool.clear();
    return createZipSink({ onChunk: (c) => spool.push(c), onAbort: () => spool.clear(), label: 'zip download' });
  }
  if (spec.kind === 'opfs') return createOpfsSink(spec.name, { overwrite: true });
  return createDirectorySink(spec.handle, spec.name);
}

/** sha256 of each dropped file, read in slices (a File may be far larger than one buffer). */
async function hashFiles(files: PathedFile[], signal: AbortSignal): Promise<[string, string][]> {
  const out: [string, string][] = [];
  const step = 8 * 1024 * 1024;
  for (const f of [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    const h = new Sha256();
    for (let o = 0; o < f.file.size; o += step) {
      if (signal.aborted) throw new CancelledError();
      h.update(new Uint8Array(await f.file.slice(o, o + step).arrayBuffer()));
    }
    out.push([f.path, h.hex()]);
  }
  return out;
}

async function capabilities(): Promise<WorkerCapabilities> {
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
  const caps: WorkerCapabilities = {
    webgpu: !!gpu,
    adapter: null,
    syncAccessHandles: typeof FileSystemFileHandle !== 'undefined' && 'createSyncAccessHandle' in FileSystemFileHandle.prototype,
  };
  if (gpu) {
    try {
      const adapter = await gpu.requestAdapter();
      if (adapter) {
        const i = adapter.info;
        caps.adapter = { vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description };
      } else caps.adapterError = 'requestAdapter() returned no adapter';
    } catch (e) {
      caps.adapterError = (e as Error).message;
    }
  }
  return caps;
}

/**
 * The worker's API over its dependencies (WebLLM-style: the worker file only exposes it). State —
 * the running job's controller, the inspected Hub source — lives per handler.
 */
export function createPipelineApi(deps: WorkerDeps = defaultDeps): PipelineWorkerApi {
  /**
   * The last Hub source opened for inspection, reused while only the settings change (each new
   * source costs several metadata requests). Runs always open their own, tied to their signal.
   */
    let current: AbortController | null = null;
    let inspected: { key: string; token?: string; opened: Promise<OpenedSource> } | null = null;

  function inspectSource(spec: SourceSpec): Promise<OpenedSource> {
    if (spec.kind !== 'hub') return deps.openSource(spec);
    const key = JSON.stringify([spec.repo, spec.revision ?? '', spec.hubUrl ?? '']);
    if (inspected && inspected.key === key && inspected.token === spec.token) return inspected.opened;
    void inspected?.opened.then((o) => o.close(), () => undefined);
    const opened = deps.openSource(spec);
    inspected = { key, token: spec.token, opened };
    opened.catch(() => { if (inspected?.opened === opened) inspected = null; });
    return opened;
  }

  async function inspect(spec: SourceSpec, settings: QuantSettings): Promise<{ preflight: Preflight }> {
    const opened = await inspectSource(spec);
    try {
      const files = opened.hub ? opened.hub.files.map((f) => ({ path: f.path, size: f.size })) : undefined;
      return { preflight: await preflight(opened.source, settings, { files }) };
    } finally {
      if (!opened.hub) opened.close();
    }
  }

  async function run(req: RunRequest, cb: RunCallbacks): Promise<{ result: RunResult }> {
    current?.abort();
    // A new run replaces the bundle a quality check would read.
    forgetRun();
    const controller = new AbortController();
    current = controller;
    const signal = controller.signal;
    const spool = new Spool();
    let download: HubProgress | undefined;
    const throttle = new Throttle(PROGRESS_INTERVAL_MS);
    const meter = new RunMeter();
    let backend: Backend | null = null;
    let readme = '';
    const opened = await deps.openSource(req.source, { signal, onDownload: (p) => (download = p) });
    try {
      // A dropped folder is nowhere the card's reader can find it: the card lists its files' hashes instead of a path.
      const localFolder = req.source.kind === 'files' ? { name: req.source.label, files: await hashFiles(req.source.files, signal) } : undefined;
      backend = await deps.openBackend(req.backend, (m) => void cb.onNotice(m));
      void cb.onBackend({ name: backend.name, description: backend.description });
      // GPTQ: the calibration set, with the model's tokenizer, before any weight is read (bad input fails here).
      let calibration: PipelineCalibration | undefined;
      if (usesCalibration(req.settings)) {
        const c = req.calibration;
        if (!c) throw new InputError(`${req.settings.method === 'gptq' ? 'method gptq' : 'the W8 budget'} needs calibration data: choose a calibration source (the demo’s built-in, WikiText-2 or a file), or ${req.settings.method === 'gptq' ? 'choose method RTN' : 'set the budget to 0 (bits overrides need none)'}`);
        const built = await buildPipelineCalibration({
          model: opened.source, modelName: req.target.model, spec: c.spec,
          file: c.file ? { text: await c.file.text(), name: c.fileName ?? 'calibration file' } : undefined,
          demoFiles: c.demoFiles, hubUrl: c.hubUrl, accessToken: c.token, signal,
        }, backend);
        calibration = built.calibration;
        const set = built.set;
        void cb.onNotice(
          `Calibration: ${set.source}, ${set.nsamples} × ${set.seqlen} tokens` +
            `${set.origin === 'sampled' ? ` (windows of a ${set.streamTokens}-token stream, seed ${set.seed})` : ' (calib.json samples as given)'}; token ids sha256 ${set.sha256.slice(0, 16)}…`,
        );
      }
      const result = await deps.runPipeline(
        {
          source: opened.source,
          settings: req.settings,
          backend,
          target: opened.hub ? { ...req.target, revision: opened.hub.revision } : req.target,
          modelArg: req.modelArg,
          localFolder,
          signal,
          calibration,
          onProgress: (e) => {
            const now = deps.now();
            const estimate = meter.update(e, now);
            if (!throttle.ready(now, e.phase)) return;
            const p: RunProgress = { ...e, estimate, ...(download ? { download } : {}) };
            void cb.onProgress(p);
          },
          onTensor: (r) => void cb.onTensor(r),
        },
        async () => withCopyOf(await makeSink(req.sink, spool), 'README.md', (b) => (readme = new TextDecoder().decode(b))),
        2,
        (err, attempt) => void cb.onNotice(`${err.message}; starting over (restart ${attempt})`),
      );
      if (signal.aborted) throw new CancelledError();
      const out: RunResult = {
        files: result.files,
        readme,
        summary: [formatLayerSummary(result.reports), formatCalibSummary(result.reports)].filter(Boolean).join('\n\n'),
        elapsedMs: result.elapsedMs,
        bytesRead: result.bytesRead,
        bytesWritten: result.bytesWritten,
        backend: result.backend,
        revision: opened.hub?.revision,
      };
      const sink = req.sink;
      if (sink.kind === 'zip') out.zipBlob = new Blob(spool.take(), { type: 'application/zip' });
      else out.savedTo = sink.kind === 'opfs' ? `browser storage (OPFS) / ${sink.name}` : `${sink.handle.name}/${sink.name}`;
      // Kept for "Check quality": the original pinned to the revision that was read, and the bundle.
      const source: SourceSpec = req.source.kind === 'hub' && opened.hub ? { ...req.source, revision: opened.hub.revision } : req.source;
      const name = sink.kind === 'zip' ? req.target.model.split('/').pop() ?? 'bundle' : sink.name;
      rememberRun(source, sink.kind === 'zip' ? { kind: 'zip', blob: out.zipBlob!, name } : sink, { settings: req.settings, target: req.target, modelArg: req.modelArg });
      return { result: out };
    } catch (e) {
      // However the abort surfaced (a fetch's AbortError, a kernel's), the page hears one name.
      if (signal.aborted) throw new CancelledError();
      throw e;
    } finally {
      if (current === controller) current = null;
      opened.close();
      await backend?.dispose().catch(() => undefined);
    }
  }

  async function zipFolder(where: { kind: 'opfs' } | { kind: 'folder'; handle: FileSystemDirectoryHandle }, name: string): Promise<{ zipBlocks: ArrayBuffer[] }> {
    const root = where.kind === 'opfs' ? await navigator.storage.getDirectory() : where.handle;
    const dir = await root.getDirectoryHandle(name);
    const spool = new Spool();
    const zip = createZipSink({ onChunk: (c) => spool.push(c), label: 'zip download' });
    const walk = async (d: FileSystemDirectoryHandle, prefix: string): Promise<void> => {
      const entries: [string, FileSystemHandle][] = [];
      for await (const e of (d as unknown as { entries(): AsyncIterable<[string, FileSystemHandle]> }).entries()) entries.push(e);
      entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
      for (const [n, h] of entries) {
        const path = prefix ? `${prefix}/${n}` : n;
        if (path === COMPLETE_MARKER) continue; // the folder protocol's marker, not part of the bundle
        if (h.kind === 'directory') { await walk(h as FileSystemDirectoryHandle, path); continue; }
        const file = await (h as FileSystemFileHandle).getFile();
        const w = await zip.createFile(path, file.size);
        const step = 8 * 1024 * 1024;
        for (let o = 0; o < file.size; o += step) await w.write(new Uint8Array(await file.slice(o, o + step).arrayBuffer()));
        await w.close();
      }
    };
    await walk(dir, '');
    await zip.finalize();
    return { zipBlocks: spool.take() };
  }

  async function saveZip(zipBlob: Blob, spec: Exclude<SinkSpec, { kind: 'zip' }>): Promise<{ savedTo: string }> {
    const files = unzipSync(new Uint8Array(await zipBlob.arrayBuffer()));
    const sink = await makeSink(spec, new Spool());
    try {
      for (const path of Object.keys(files).sort()) {
        const w = await sink.createFile(path, files[path].length);
        await w.write(files[path]);
        await w.close();
      }
      await sink.finalize();
    } catch (e) {
      await sink.abort(e).catch(() => undefined);
      throw e;
    }
    return { savedTo: spec.kind === 'opfs' ? `browser storage (OPFS) / ${spec.name}` : `${spec.handle.name}/${spec.name}` };
  }

  async function compare(spec: SourceSpec, settings: QuantSettings, backendKind: BackendChoice, tensor: string) {
    const opened = await deps.openSource(spec);
    // The comparison is small (one tensor, a few variants): the CPU is quick and never contends with a GPU run.
    const backend = await deps.openBackend(backendKind === 'webgpu' ? 'webgpu' : 'cpu', () => undefined);
    try {
      return { comparison: await compareBlockSizes(opened.source, settings, backend, tensor) };
    } finally {
      opened.close();
      await backend.dispose().catch(() => undefined);
    }
  }

  let calibrated: Promise<BackendCalibration[]> | null = null;

  /** Each backend timed once per worker (the page asks once; a run never waits for it). */
  function calibrate(): Promise<BackendCalibration[]> {
    calibrated ??= (async () => {
      const out: BackendCalibration[] = [];
      for (const kind of ['cpu', 'webgpu'] as const) {
        const backend = await deps.openBackend(kind, () => undefined).catch(() => null);
        if (!backend) continue;
        try {
          if (backend.name !== kind) continue; // WebGPU fell back to the CPU: nothing new to time
          const software = SOFTWARE_ADAPTER.test(backend.description);
          out.push(await calibrateBackend(backend, { backend: kind, description: backend.description, software }, deps.now));
        } catch {
          // A backend that cannot finish the calibration is not offered by the estimate.
        } finally {
          await backend.dispose().catch(() => undefined);
        }
      }
      return out;
    })();
    return calibrated;
  }

  return {
  capabilities,
  calibrate: () => guarded(async () => ({ calibrations: await calibrate() })),
  inspect: (source, settings) => guarded(() => inspect(source, settings)),
  run: (req, cb) => guarded(() => run(req, cb)),
  async cancel() {
    current?.abort();
  },
  compare: (source, settings, backend, tensor) => guarded(() => compare(source, settings, backend, tensor)),
  zipFolder: (where, name) => guarded(() => zipFolder(where, name), (v) => v.zipBlocks),
  saveZip: (zip, sink) => guarded(() => saveZip(zip, sink)),
  checkQuality: (req, cb) => guarded(() => checkLastRun(req, cb)),
  checkQualityFiles: (original, bundle, req, cb) => guarded(() => checkDroppedPair(original, bundle, req, cb)),
  async cancelQuality() {
    cancelQuality();
  },
  advise: (req, cb) => guarded(() => advise(req, cb, deps)),
  async cancelAdvice() {
    cancelAdvice();
  },
  };
}
