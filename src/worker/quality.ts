/**
 * The worker's side of "Check quality": remembers the last run's original model and where its
 * bundle is (a zip Blob, OPFS or a picked folder), prepares the evaluation text, runs
 * runQualityCheck (src/eval/check.ts) and writes the figures into the bundle's model card,
 * keeping manifest.sha256 in step.
 */
import { CancelledError, InputError } from '../core/errors';
import type { RunTarget } from '../core/link';
import { describeVsPlainRtn, isPlainRtn, plainRtnSettings, type QuantSettings } from '../core/settings';
import { BUILTIN_TEXT, BUILTIN_TEXT_LABEL } from '../eval/builtin-text';
import { summarize, type ComparedBundle } from '../eval/compare-bundles';
import { runPipeline } from '../core/pipeline/run';
import { createZipSink } from '../sinks/zip-sink';
import { Spool } from './spool';
import { openBackend } from './backend';
import type { ModelSource } from '../core/ports';
import { Throttle } from '../core/progress';
import { createStaticSource } from '../demo/static-source';
import { calibrationText, checkIds, checkSeqlen, describeCalibration } from '../eval/calibration';
import { updateCardQuality, updateManifestLine } from '../eval/card-update';
import { qualityFigures, runQualityCheck, type EvalDevice, type QualityCheckResult, type QualityProgress } from '../eval/check';
import { openEvalModel } from '../eval/load-model';
import { isGpuUnavailable } from '../gpu/errors';
import { createGpuRuntime, type GpuRuntime } from '../gpu/runtime';
import { MANIFEST_FILE } from '../sinks/common';
import { COMPLETE_MARKER } from '../sinks/handle-sink';
import { sha256Hex } from '../sinks/sha256';
import { createFilesSource, type PathedFile } from '../sources/files/files-source';
import type { BackendChoice, QualityCallbacks, QualityOutput, QualityReport, QualityRequest, QualityTextSpec, SourceSpec } from './protocol';
import { openSource } from './sources';
import { readZipEntries, rewriteZip, zipModelSource } from './zip-source';

/** Models below this many f32 weight bytes run on the CPU under 'auto' (SPEC §7: "CPU for tiny models"). */
const TINY_MODEL_F32_BYTES = 64 * 1024 * 1024;
const PROGRESS_INTERVAL_MS = 100;

export type HeldBundle =
  | { kind: 'zip'; blob: Blob; name: string }
  | { kind: 'opfs'; name: string }
  | { kind: 'folder'; handle: FileSystemDirectoryHandle; name: string };

/** What the last finished run left: how to reopen its input, where its output is, and how it was made. */
let lastRun: { source: SourceSpec; bundle: HeldBundle; settings: QuantSettings; target: RunTarget; modelArg: string } | null = null;
let current: AbortController | null = null;

export function rememberRun(source: SourceSpec, bundle: HeldBundle, made: { settings: QuantSettings; target: RunTarget; modelArg: string }): void {
  lastRun = { source, bundle, ...made };
}

export function forgetRun(): void {
  lastRun = null;
  current?.abort();
}

export function cancelQuality(): void {
  current?.abort();
}

// ---- the evaluation text -----------------------------------------------------------------

/** WikiText-2 is ~1.3 MB of parquet; fetched once per hub per worker. */
const wikiCache = new Map<string, Promise<string>>();

export async function prepareText(spec: QualityTextSpec, signal: AbortSignal): Promise<{ text?: string; tokens?: number[]; label: string }> {
  if (spec.kind === 'demo') {
    const src = createStaticSource(spec.baseUrl, spec.model);
    const read = async (path: string) => {
      const f = await src.open(path);
      return new TextDecoder().decode(await f.read(0, f.size, signal));
    };
    // The ids are the text as the model was trained on it (BOS before each story); the raw
    // text tokenized in one piece would score the story separators as if they were prose.
    if (spec.model.calibrationTokens) {
      const parsed = JSON.parse(await read(spec.model.calibrationTokens)) as { ids?: unknown };
      return { tokens: checkIds(parsed.ids, `${spec.model.calibrationTokens} "ids"`), label: `${spec.model.name} evaluation stories (${spec.model.calibrationTokens})` };
    }
    if (!spec.model.calibration) throw new InputError(`the demo model ${spec.model.name} has no evaluation text`);
    return { text: await read(spec.model.calibration), label: `${spec.model.name} ${spec.model.calibration}` };
  }
  if (spec.kind === 'file') {
    return { text: await calibrationText({ kind: 'file', file: spec.file }), label: spec.name };
  }
  if (spec.kind === 'builtin') return { text: BUILTIN_TEXT, label: BUILTIN_TEXT_LABEL };
  const key = spec.hubUrl ?? '';
  let p = wikiCache.get(key);
  if (!p) {
    // Not tied to this check's signal: a cancelled check should not poison the cache for the next.
    p = calibrationText({ kind: 'wikitext2', hubUrl: spec.hubUrl || undefined, accessToken: spec.token || undefined }).catch((e: unknown) => {
      throw offlineError(e, spec.hubUrl);
    });
    wikiCache.set(key, p);
    p.catch(() => wikiCache.delete(key));
  }
  const text = await Promise.race([
    p,
    new Promise<never>((_, reject) => {
      if (signal.aborted) reject(new CancelledError());
      signal.addEventListener('abort', () => reject(new CancelledError()), { once: true });
    }),
  ]);
  return { text, label: describeCalibration({ kind: 'wikitext2' }) };
}

/**
 * WikiText could not be had. A network failure (no answer at all) reads as being offline; an
 * answer that was an error is the Hub's. Either way the page offers the built-in text and a file.
 */
function offlineError(e: unknown, hubUrl?: string): Error {
  if (e instanceof CancelledError) return e;
  const msg = (e as Error)?.message ?? String(e);
  const network = /failed to fetch|networkerror|fetch failed|load failed|network|ECONNREFUSED|ENOTFOUND|ERR_/i.test(msg) && !/HTTP [45]\d\d|status [45]\d\d/.test(msg);
  const where = hubUrl || 'huggingface.co';
  const err = new Error(
    network
      ? `you appear to be offline — WikiText-2 could not be fetched from ${where} (${msg}); choose a text file or the built-in text`
      : `WikiText-2 could not be read from ${where} (${msg}); choose a text file or the built-in text`,
  );
  err.name = 'OfflineError';
  return err;
}

// ---- running the check -------------------------------------------------------------------

/** Another bundle of the same model to score on the same windows (e.g. plain RTN). */
interface OtherBundle {
  label: string;
  source: ModelSource;
}

async function check(
  original: ModelSource,
  bundle: ModelSource,
  req: QualityRequest,
  cb: QualityCallbacks,
  signal: AbortSignal,
  compare?: { label: string; others: OtherBundle[] },
): Promise<QualityReport> {
  const throttle = new Throttle(PROGRESS_INTERVAL_MS);
  const progress = (p: QualityProgress) => {
    if (throttle.ready(performance.now(), p.stage, p.done === p.total)) void cb.onProgress(p);
  };
  progress({ stage: 'text', done: 0, total: 1 });
  const text = await prepareText(req.text, signal);
  progress({ stage: 'text', done: 1, total: 1 });

  // Headers and config only: the context length bounds the window, the size picks the device.
  const info = await openEvalModel(original, signal);
  const maxPos = info.config.max_position_embeddings;
  checkSeqlen(req.seqlen, typeof maxPos === 'number' ? maxPos : undefined);

  let device: EvalDevice = req.device === 'cpu' ? 'cpu' : 'webgpu';
  let notice: string | undefined;
  if (req.device === 'auto' && info.f32Bytes < TINY_MODEL_F32_BYTES) {
    device = 'cpu';
    // Offer WebGPU only where the worker has it (Safari/WebKit workers may have no navigator.gpu).
    notice = 'gpu' in navigator
      ? 'A model this small runs faster on the CPU than through WebGPU; ran on the CPU (choose device "WebGPU" to force it).'
      : 'WebGPU is not available in this browser’s workers; ran on the CPU.';
  }
  let gpu: GpuRuntime | undefined;
  if (device === 'webgpu') {
    try {
      gpu = await createGpuRuntime();
    } catch (e) {
      notice = isGpuUnavailable(e) && e.reason === 'no-adapter'
        ? 'WebGPU is not available in this browser’s workers (no adapter); ran on the CPU.'
        : `WebGPU unavailable (${(e as Error).message}); ran on the CPU.`;
    }
    if (!gpu) device = 'cpu';
  }
  try {
    const r = await runQualityCheck({
      original,
      bundle,
      text: text.text,
      tokens: text.tokens,
      textLabel: text.label,
      seqlen: req.seqlen,
      windows: req.windows,
      prompt: req.prompt || undefined,
      genTokens: req.prompt ? req.genTokens : undefined,
      device,
      gpu,
      signal,
      onProgress: progress,
    });
    let comparison: QualityReport['comparison'];
    if (compare && compare.others.length) {
      const rows: ComparedBundle[] = [row(compare.label, r)];
      for (const o of compare.others) {
        const x = await runQualityCheck({
          original, bundle: o.source, text: text.text, tokens: text.tokens, textLabel: text.label, seqlen: req.seqlen, windows: req.windows,
          device: r.device, gpu: r.device === 'webgpu' ? gpu : undefined, signal,
          onProgress: (p) => progress({ ...p, stage: `${p.stage}:${o.label}` }),
        });
        rows.push(row(o.label, x));
      }
      comparison = summarize(rows);
    }
    let agree: number | undefined;
    if (r.generation) {
      const { originalIds: a, quantizedIds: b } = r.generation;
      agree = 0;
      while (agree < a.length && agree < b.length && a[agree] === b[agree]) agree++;
    }
    return {
      ...r,
      notice: r.notice ?? notice,
      figures: qualityFigures(r),
      pplChangePct: (r.pplQuantized / r.pplOriginal - 1) * 100,
      ...(agree !== undefined ? { genAgree: agree } : {}),
      ...(comparison ? { comparison } : {}),
    };
  } finally {
    gpu?.destroy();
  }
}

function row(label: string, r: QualityCheckResult): ComparedBundle {
  return { label, pplQuantized: r.pplQuantized, pplChangePct: (r.pplQuantized / r.pplOriginal - 1) * 100, klMean: r.klMean, top1Agreement: r.top1Agreement, result: r };
}

/** Quantize the last run's model again with other settings, into a zip held in memory, as a ModelSource. */
async function quantizeVariant(
  held: NonNullable<typeof lastRun>,
  settings: QuantSettings,
  backendChoice: BackendChoice,
  signal: AbortSignal,
  onProgress: (p: QualityProgress) => void,
): Promise<ModelSource> {
  const opened = await openSource(held.source, { signal });
  const backend = await openBackend(backendChoice, () => undefined);
  const spool = new Spool();
  try {
    await runPipeline({
      source: opened.source,
      sink: createZipSink({ onChunk: (c) => spool.push(c), onAbort: () => spool.clear(), label: 'plain RTN (in memory)' }),
      settings,
      backend,
      target: held.target,
      modelArg: held.modelArg,
      signal,
      onProgress: (e) => onProgress({ stage: 'quantize-rtn', done: e.tensorIndex, total: e.tensorCount }),
    });
  } finally {
    opened.close();
    await backend.dispose().catch(() => undefined);
  }
  const blob = new Blob(spool.take(), { type: 'application/zip' });
  return zipModelSource(blob, await readZipEntries(blob, 'plain RTN bundle'), 'plain RTN');
}

async function withController<T>(f: (signal: AbortSignal) => Promise<T>): Promise<T> {
  current?.abort();
  const controller = new AbortController();
  current = controller;
  try {
    const v = await f(controller.signal);
    if (controller.signal.aborted) throw new CancelledError();
    return v;
  } catch (e) {
    if (controller.signal.aborted) throw new CancelledError();
    throw e;
  } finally {
    if (current === controller) current = null;
  }
}

// ---- the held bundle ---------------------------------------------------------------------

async function bundleDir(b: Exclude<HeldBundle, { kind: 'zip' }>): Promise<FileSystemDirectoryHandle> {
  const root = b.kind === 'opfs' ? await navigator.storage.getDirectory() : b.handle;
  try {
    return await root.getDirectoryHandle(b.name);
  } catch {
    throw new InputError(`the bundle ${b.name} is no longer in ${b.kind === 'opfs' ? 'browser storage' : `the folder ${b.handle.name}`}; run again`);
  }
}

async function dirFiles(dir: FileSystemDirectoryHandle, prefix = ''): Promise<PathedFile[]> {
  const out: PathedFile[] = [];
  for await (const [n, h] of (dir as unknown as { entries(): AsyncIterable<[string, FileSystemHandle]> }).entries()) {
    const path = prefix ? `${prefix}/${n}` : n;
    if (path === COMPLETE_MARKER) continue; // the folder protocol's marker, not part of the bundle
    if (h.kind === 'directory') out.push(...(await dirFiles(h as FileSystemDirectoryHandle, path)));
    else out.push({ path, file: await (h as FileSystemFileHandle).getFile() });
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

async function readAll(src: ModelSource, path: string): Promise<Uint8Array | undefined> {
  if (!(await src.listFiles()).includes(path)) return undefined;
  const f = await src.open(path);
  return f.read(0, f.size);
}

async function writeFile(dir: FileSystemDirectoryHandle, path: string, bytes: Uint8Array): Promise<void> {
  const fh = await dir.getFileHandle(path, { create: true });
  const w = (fh as FileSystemFileHandle & { createWritable?: () => Promise<FileSystemWritableFileStream> }).createWritable;
  if (w) {
    const s = await w.call(fh);
    await s.write(bytes as Uint8Array<ArrayBuffer>);
    await s.close();
    return;
  }
  // Safari's OPFS has no createWritable; workers have sync access handles instead.
  const h = await (fh as unknown as { createSyncAccessHandle(): Promise<{ truncate(n: number): void; write(b: Uint8Array, o: { at: number }): number; flush(): void; close(): void }> }).createSyncAccessHandle();
  try {
    h.truncate(0);
    h.write(bytes, { at: 0 });
    h.flush();
  } finally {
    h.close();
  }
}

/** README text with the figures, and the manifest updated to match (when there is one). */
function updatedCard(readme: Uint8Array | undefined, manifest: Uint8Array | undefined, figures: Record<string, number | string>) {
  const dec = new TextDecoder();
  const text = updateCardQuality(readme ? dec.decode(readme) : '', figures);
  const bytes = new TextEncoder().encode(text);
  const man = manifest ? updateManifestLine(dec.decode(manifest), 'README.md', sha256Hex(bytes)) : undefined;
  return { text, bytes, manifest: man, manifestBytes: man === undefined ? undefined : new TextEncoder().encode(man) };
}

export async function checkLastRun(req: QualityRequest, cb: QualityCallbacks): Promise<QualityOutput> {
  const held = lastRun;
  if (!held) throw new InputError('there is no finished run in this session to check; run the model first');
  return withController(async (signal) => {
    const opened = await openSource(held.source, { signal });
    try {
      const b = held.bundle;
      let bundle: ModelSource;
      let zip: { entries: Awaited<ReturnType<typeof readZipEntries>> } | undefined;
      let dir: FileSystemDirectoryHandle | undefined;
      if (b.kind === 'zip') {
        zip = { entries: await readZipEntries(b.blob, `${b.name}.zip`) };
        bundle = zipModelSource(b.blob, zip.entries, b.name);
      } else {
        dir = await bundleDir(b);
        bundle = createFilesSource(await dirFiles(dir), b.name);
      }
      // "Did rotation help?" by measurement: plain RTN of the same model, scored on the same windows.
      let compare: { label: string; others: OtherBundle[] } | undefined;
      // Plain RTN: no rotation, no GPTQ (so no calibration), the integer grid, every tensor at the run's bits.
      if (req.compareRtn && !isPlainRtn(held.settings)) {
        const rtnSettings = plainRtnSettings(held.settings);
        const throttle = new Throttle(PROGRESS_INTERVAL_MS);
        const rtn = await quantizeVariant(held, rtnSettings, req.compareRtn.backend, signal, (p) => {
          if (throttle.ready(performance.now(), p.stage, p.done === p.total)) void cb.onProgress(p);
        });
        compare = { label: `chosen settings (${describeVsPlainRtn(held.settings)})`, others: [{ label: 'plain RTN (rotation none)', source: rtn }] };
      }
      const report = await check(opened.source, bundle, req, cb, signal, compare);
      const card = updatedCard(await readAll(bundle, 'README.md'), await readAll(bundle, MANIFEST_FILE), report.figures);
      if (signal.aborted) throw new CancelledError();
      const out: QualityOutput = { report, readme: card.text, manifest: card.manifest, cardUpdated: 'bundle' };
      if (b.kind === 'zip') {
        const replace = new Map([['README.md', card.bytes]]);
        if (card.manifestBytes) replace.set(MANIFEST_FILE, card.manifestBytes);
        const blob = await rewriteZip(b.blob, zip!.entries, replace);
        held.bundle = { ...b, blob };
        out.zipBlob = blob;
        out.files = zip!.entries.map((e) => ({ path: e.path, size: replace.get(e.path)?.length ?? e.size }));
      } else {
        await writeFile(dir!, 'README.md', card.bytes);
        if (card.manifestBytes) await writeFile(dir!, MANIFEST_FILE, card.manifestBytes);
        out.files = (await dirFiles(dir!)).map((f) => ({ path: f.path, size: f.file.size }));
      }
      return out;
    } finally {
      opened.close();
    }
  });
}

export async function checkDroppedPair(
  original: { files: PathedFile[]; label: string },
  bundleFiles: { files: PathedFile[]; label: string },
  req: QualityRequest,
  cb: QualityCallbacks,
): Promise<QualityOutput> {
  return withController(async (signal) => {
    const opened = await openSource({ kind: 'files', files: original.files, label: original.label }, { signal });
    const bundle = createFilesSource(bundleFiles.files, bundleFiles.label);
    const report = await check(opened.source, bundle, req, cb, signal);
    // Dropped files cannot be written back: the page offers the updated card for download.
    const card = updatedCard(await readAll(bundle, 'README.md'), await readAll(bundle, MANIFEST_FILE), report.figures);
    return { report, readme: card.text, manifest: card.manifest, cardUpdated: 'returned' };
  });
}
