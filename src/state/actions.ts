/**
 * Everything the UI can do: pick a model, change settings, run, cancel, save, inspect, share.
 * Talks to the pipeline worker; keeps the URL in step with the model and settings.
 */
import { cliCommand, parseRunQuery, runQuery, usesCalibration, type CalibrationSpec, type RunTarget } from '../core/link';
import { parseSettingsByKey, type QuantSettings } from '../core/settings';
import { parseDemoIndex, DEMO_INDEX_FILE } from '../demo/catalog';
import { filesFromDataTransfer } from '../sources/files/data-transfer';
import { filesFromFileList, stripCommonFolder, type PathedFile } from '../sources/files/files-source';
import type { BackendChoice, RunRequest, SourceSpec } from '../worker/protocol';
import { bundleName, resolveBackend } from './derive';
import { qualityOnNewRun } from './quality';
import { overrideTextError } from './precision';
import { calibFromLink, calibRequest, calibSpec, type CalibState } from './calibration';
import { session, pipeline } from './session';
import { getApp, initialState, setApp, type Destination, type ModelKind, type PageCapabilities } from './store';

const DEFAULT_HUB = 'https://huggingface.co';

function demoBaseUrl(): string {
  return new URL('demo/', document.baseURI).href;
}

// ---- the run's description ---------------------------------------------------------------

/** Model name as the bundle records it (target.model) and the CLI `--model` equivalent. */
export function currentTarget(): { target: RunTarget; modelArg: string } | null {
  const s = getApp();
  if (s.modelKind === 'demo') {
    if (!s.demoName) return null;
    // Same as the CLI given the demo folder: its base name (so app and CLI bundles match byte for byte).
    return { target: { model: s.demoName }, modelArg: `public/demo/${s.demoName}` };
  }
  if (s.modelKind === 'hub') {
    const repo = s.repo.trim();
    if (!repo) return null;
    const revision = s.revision.trim();
    return { target: { model: repo, revision: revision && revision !== 'main' ? revision : undefined, hub: s.hubUrl || undefined }, modelArg: repo };
  }
  if (!s.files) return null;
  return { target: { model: s.files.label }, modelArg: s.files.label };
}

/** Which model the page shows (a result made from another is stale). */
export function modelKey(): string {
  const s = getApp();
  if (s.modelKind === 'demo') return `demo:${s.demoName}`;
  if (s.modelKind === 'hub') return `hub:${s.hubUrl}:${s.repo.trim()}@${s.revision.trim() || 'main'}`;
  return `files:${s.files?.label ?? ''}:${s.files?.count ?? 0}:${s.files?.bytes ?? 0}`;
}

export function sourceSpec(): SourceSpec | null {
  const s = getApp();
  if (s.modelKind === 'demo') {
    const model = s.demos.find((d) => d.name === s.demoName);
    return model ? { kind: 'demo', baseUrl: demoBaseUrl(), model } : null;
  }
  if (s.modelKind === 'hub') {
    if (!s.repo.trim()) return null;
    return { kind: 'hub', repo: s.repo.trim(), revision: s.revision.trim() || 'main', hubUrl: s.hubUrl || undefined, token: session.token || undefined };
  }
  return session.files.length ? { kind: 'files', files: session.files, label: s.files?.label ?? 'dropped files' } : null;
}

/** The demo model shown (undefined for Hub models and dropped files). */
export function currentDemo() {
  const s = getApp();
  return s.modelKind === 'demo' ? s.demos.find((d) => d.name === s.demoName) : undefined;
}

/** The calibration a GPTQ run would use, as a link and the CLI name it (null for RTN). */
export function currentCalibSpec(): CalibrationSpec | null {
  const s = getApp();
  return usesCalibration(s.settings) ? calibSpec(s.calib, currentDemo()) : null;
}

/** The page's shareable query: model (not for dropped files), revision, hub, every setting. Never a token. */
export function shareQuery(): string {
  const s = getApp();
  const t = currentTarget();
  if (!t) return runQuery({ model: '' }, s.settings, currentCalibSpec()).replace(/^\?model=&?/, '?');
  const q = runQuery(t.target, s.settings, currentCalibSpec());
  if (s.modelKind !== 'files') return q;
  const p = new URLSearchParams(q);
  p.delete('model'); // dropped files cannot be reopened from a link
  return `?${p.toString()}`;
}

export function shareLink(): string {
  return `${location.origin}${location.pathname}${shareQuery()}`;
}

function syncUrl(): void {
  const extra = new URLSearchParams(location.search);
  const q = new URLSearchParams(shareQuery());
  // Parameters that are not part of the run description but chosen in the URL stay.
  if (extra.get('backend')) q.set('backend', extra.get('backend')!);
  const next = `${location.pathname}?${q.toString()}`;
  if (next !== `${location.pathname}${location.search}`) history.replaceState(null, '', next);
}

// ---- start-up ----------------------------------------------------------------------------

export async function init(): Promise<void> {
  const query = parseRunQuery(location.search);
  const params = new URLSearchParams(location.search);
  const backend = params.get('backend');
  if (backend === 'cpu' || backend === 'webgpu' || backend === 'auto') setApp({ backend });
  // Key by key: a bad value is named (the default shown in its place) and Run waits until it is fixed or dismissed.
  const parsed = parseSettingsByKey(query.settings);
  const badOverride = parsed.problems.find((p) => p.key === 'bitsOverride');
  setApp({
    settings: parsed.settings,
    linkProblems: parsed.problems,
    overrideDraft: badOverride ? badOverride.value : parsed.settings.bitsOverride,
    overrideDraftError: badOverride ? badOverride.message : null,
  });
  try {
    setApp({ calib: { ...getApp().calib, ...calibFromLink(query.calibration) } });
  } catch (e) {
    setApp({ notices: [...getApp().notices, `The link's calibration was not valid (${(e as Error).message}); the default calibration is used instead.`] });
  }
  if (query.target.hub) setApp({ hubUrl: query.target.hub });
  if (query.target.revision) setApp({ revision: query.target.revision });

  void detectCapabilities();
  await loadDemos();
  const model = query.target.model;
  if (model) {
    const name = model.startsWith('demo:') ? model.slice(5) : model;
    if (getApp().demos.some((d) => d.name === name)) setApp({ modelKind: 'demo', demoName: name });
    else setApp({ modelKind: 'hub', repo: model });
  }
  syncUrl();
  setApp({ ready: true });
  if (query.autorun && model) void run();
  refreshPreflight();
}

async function loadDemos(): Promise<void> {
  try {
    const r = await fetch(new URL(DEMO_INDEX_FILE, demoBaseUrl()));
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    const idx = parseDemoIndex(await r.text());
    setApp({ demos: idx.models, demoName: getApp().demoName || idx.models[0]?.name || '' });
  } catch (e) {
    setApp({ demosError: `No demo models found (${(e as Error).message}); run \`npm run demo\` to generate them.` });
  }
}

async function detectCapabilities(): Promise<void> {
  const nav = navigator as Navigator & { gpu?: GPU };
  const caps: PageCapabilities = {
    webgpu: !!nav.gpu,
    adapter: null,
    worker: null,
    fileSystemAccess: typeof (window as unknown as { showDirectoryPicker?: unknown }).showDirectoryPicker === 'function',
    opfs: false,
    opfsUnavailable: null,
    storage: null,
  };
  if (typeof navigator.storage?.getDirectory !== 'function') caps.opfsUnavailable = 'not in this browser';
  else {
    // The API can exist and still refuse: WebKit throws UnknownError in sessions without
    // persistent storage (private windows, automation). Ask once so the choice is never offered in vain.
    try {
      await navigator.storage.getDirectory();
      caps.opfs = true;
    } catch (e) {
      caps.opfsUnavailable = `refused in this window: ${(e as Error).name || 'error'}`;
    }
  }
  if (nav.gpu) {
    try {
      const a = await nav.gpu.requestAdapter();
      if (a) caps.adapter = [a.info.vendor, a.info.architecture, a.info.description].filter(Boolean).join(' · ') || 'unnamed adapter';
    } catch {
      caps.adapter = null;
    }
  }
  try {
    const est = await navigator.storage?.estimate?.();
    if (est) caps.storage = { quota: est.quota ?? 0, usage: est.usage ?? 0 };
  } catch {
    caps.storage = null;
  }
  setApp({ caps: { ...caps } });
  try {
    caps.worker = await pipeline().api().capabilities();
  } catch {
    caps.worker = null;
  }
  setApp({ caps: { ...caps } });
  if (getApp().calibration.state === 'none') void calibrate();
}

/** Time each backend once (a second or two, in the worker) so estimates and "auto" rest on measurement. */
async function calibrate(): Promise<void> {
  setApp({ calibration: { state: 'running', backends: [] } });
  try {
    const out = await pipeline().api().calibrate();
    setApp({ calibration: out.ok ? { state: 'done', backends: out.calibrations } : { state: 'error', backends: [] } });
  } catch {
    setApp({ calibration: { state: 'error', backends: [] } });
  }
}

// ---- model and settings ------------------------------------------------------------------

function modelChanged(): void {
  setApp({ preflight: { state: 'none' }, comparison: { state: 'idle' } });
  // The last run's result, inspection and check belonged to the earlier model: gone, not left beside the new one.
  if (getApp().status !== 'running' && getApp().result && getApp().result!.modelKey !== modelKey()) reset();
  syncUrl();
  refreshPreflight();
}

export function setModelKind(kind: ModelKind): void {
  setApp({ modelKind: kind });
  modelChanged();
}

export function setRepo(repo: string): void {
  setApp({ repo });
  syncUrl();
}

export function setRevision(revision: string): void {
  setApp({ revision });
  syncUrl();
}

/** Repo/revision typed: look the model up once typing settles (blur / Enter / button). */
export function lookUpHubModel(): void {
  modelChanged();
}

export function setHubUrl(hubUrl: string): void {
  setApp({ hubUrl: hubUrl.trim() === DEFAULT_HUB ? '' : hubUrl.trim() });
  syncUrl();
}

export function setToken(token: string): void {
  session.token = token.trim();
  setApp({ hasToken: session.token.length > 0 });
}

export function setDemo(name: string): void {
  setApp({ demoName: name, modelKind: 'demo' });
  modelChanged();
}

export function setFiles(files: PathedFile[]): void {
  const all = files.filter((f) => !f.path.split('/').some((s) => s.startsWith('.') || s === '__MACOSX'));
  // A dropped folder names the model (as the CLI names a folder by its base name).
  const top = all[0]?.path.includes('/') && all.every((f) => f.path.split('/')[0] === all[0].path.split('/')[0]) ? all[0].path.split('/')[0] : 'dropped-model';
  session.files = stripCommonFolder(all);
  setApp({
    modelKind: 'files',
    files: session.files.length ? { label: top, count: session.files.length, bytes: session.files.reduce((s, f) => s + f.file.size, 0) } : null,
  });
  modelChanged();
}

export async function dropFiles(dt: DataTransfer): Promise<void> {
  setFiles(await filesFromDataTransfer(dt));
}

export function pickFiles(list: FileList | null): void {
  if (list && list.length) setFiles(filesFromFileList(list));
}

export function setSetting<K extends keyof QuantSettings>(key: K, value: QuantSettings[K]): void {
  // Setting a value the link had wrong fixes that problem.
  const linkProblems = getApp().linkProblems.filter((p) => p.key !== key);
  setApp({ settings: { ...getApp().settings, [key]: value }, linkProblems });
  if (key === 'bitsOverride') setApp({ overrideDraft: String(value), overrideDraftError: null });
  syncUrl();
  refreshPreflight();
}

/** The bits-override text as typed: it becomes the setting once it parses; until then its error is shown and Run is off. */
export function setOverrideText(text: string): void {
  const error = overrideTextError(text);
  if (error) {
    setApp({ overrideDraft: text, overrideDraftError: error, linkProblems: getApp().linkProblems.filter((p) => p.key !== 'bitsOverride') });
    return;
  }
  setSetting('bitsOverride', text.trim());
  setApp({ overrideDraft: text });
}

/** "Use the settings shown": the link's bad values are dropped, the defaults shown in their place are kept. */
export function acceptShownSettings(): void {
  const s = getApp();
  setApp({ linkProblems: [], ...(s.overrideDraftError ? { overrideDraft: s.settings.bitsOverride, overrideDraftError: null } : {}) });
}

/** Why Run is off because of the settings themselves (before the preflight), or null. */
export function settingsBlocked(): string | null {
  const s = getApp();
  if (s.linkProblems.length) return `The link has ${s.linkProblems.length === 1 ? 'a value' : `${s.linkProblems.length} values`} this app cannot use (see Settings): fix ${s.linkProblems.length === 1 ? 'it' : 'them'} or press “Use the settings shown”.`;
  if (s.overrideDraftError) return 'Fix the bits overrides under Settings → Precision first.';
  return null;
}

/** A preflight suggestion's settings, applied in one click. */
export function applySettings(patch: Partial<QuantSettings>): void {
  const linkProblems = getApp().linkProblems.filter((p) => !(p.key in patch));
  setApp({ settings: { ...getApp().settings, ...patch }, linkProblems });
  if (patch.bitsOverride !== undefined) setApp({ overrideDraft: patch.bitsOverride, overrideDraftError: null });
  syncUrl();
  refreshPreflight(0);
}

/** GPTQ's calibration: source, samples, seqlen, seed. */
export function setCalib(patch: Partial<CalibState>): void {
  setApp({ calib: { ...getApp().calib, ...patch } });
  syncUrl();
}

export function setCalibKind(kind: CalibState['kind']): void {
  setCalib({ kind, chosen: true });
}

/** A dropped or picked calibration file (a text file, a calib.json, or a {"ids": [...]} token file). */
export function setCalibFile(file: File | null): void {
  session.calibFile = file;
  setCalib(file ? { kind: 'file', chosen: true, file: { name: file.name, bytes: file.size }, wantedFile: null } : { file: null });
}

export function setBackend(backend: BackendChoice): void {
  setApp({ backend });
}

export function setDestination(destination: Destination): void {
  setApp({ destination });
}

// ---- pre-run inspection (headers only) ---------------------------------------------------

let preflightTimer: ReturnType<typeof setTimeout> | undefined;
let preflightSeq = 0;

export function refreshPreflight(delayMs = 250): void {
  clearTimeout(preflightTimer);
  // An inspection already in flight describes the earlier model or settings: its answer is dropped.
  preflightSeq++;
  preflightTimer = setTimeout(() => void doPreflight(), delayMs);
}

async function doPreflight(): Promise<void> {
  const spec = sourceSpec();
  if (!spec) {
    setApp({ preflight: { state: 'none' } });
    return;
  }
  const seq = ++preflightSeq;
  setApp({ preflight: { ...getApp().preflight, state: 'loading' } });
  const out = await pipeline().api().inspect(spec, getApp().settings);
  if (seq !== preflightSeq) return; // a newer request superseded this one
  setApp({ preflight: out.ok ? { state: 'ok', info: out.preflight } : { state: 'error', error: out.error } });
}

// ---- run / cancel ------------------------------------------------------------------------

let cancelled = false;

export async function run(): Promise<void> {
  const s = getApp();
  if (s.status === 'running' || !s.ready) return;
  const spec = sourceSpec();
  const t = currentTarget();
  if (!spec || !t) {
    setApp({ status: 'error', error: { name: 'InputError', message: 'Choose a model first: a demo model, a Hub repo id, or model files.' } });
    return;
  }
  // The button is disabled then; a link with autorun must not start what the preflight refused either.
  if (s.preflight.state === 'ok' && s.preflight.info?.blocking) return;
  if (settingsBlocked()) return;
  let calibration: RunRequest['calibration'];
  if (usesCalibration(s.settings)) {
    const req = calibRequest(s.calib, currentDemo(), session.calibFile, { hubUrl: s.hubUrl || undefined, token: session.token || undefined });
    if (typeof req === 'string') {
      setApp({ status: 'error', error: { name: 'InputError', message: req } });
      return;
    }
    calibration = req;
  }
  const calib = calibration?.spec ?? null;
  const name = bundleName(t.target.model, s.settings);
  const chosen = resolveBackend(s.backend, s.preflight.info, s.settings, s.calibration.backends);
  let sink: RunRequest['sink'] = { kind: 'zip' };
  if (s.destination === 'opfs') sink = { kind: 'opfs', name };
  if (s.destination === 'folder') {
    try {
      const dir = await (window as unknown as { showDirectoryPicker(o: object): Promise<FileSystemDirectoryHandle> }).showDirectoryPicker({ mode: 'readwrite', id: 'quarot-bundles' });
      session.folder = dir;
      sink = { kind: 'folder', handle: dir, name };
    } catch {
      return; // the person closed the picker
    }
  }
  cancelled = false;
  session.zip = null;
  qualityOnNewRun(spec.kind === 'demo' ? spec.model.name : '');
  setApp({
    status: 'running', progress: null, reports: [], result: null, error: null, notices: chosen.notice ? [chosen.notice] : [], backendInfo: null,
    selected: null, comparison: { state: 'idle' }, saveState: { state: 'idle', message: '' },
  });
  const key = modelKey();
  const settings = s.settings;
  const out = await pipeline().run(
    { source: spec, settings, backend: chosen.backend, sink, target: t.target, modelArg: t.modelArg, calibration },
    {
      onProgress: (p) => {
        if (!cancelled) setApp({ progress: p });
      },
      onTensor: (r) => {
        if (cancelled) return;
        const reports = [...getApp().reports, r];
        setApp({ reports, selected: getApp().selected ?? (r.quantized && r.transformed ? r.name : null) });
      },
      onBackend: (info) => setApp({ backendInfo: info }),
      onNotice: (m) => setApp({ notices: [...getApp().notices, m] }),
    },
  );
  if (!out.ok) {
    if (out.error.name === 'CancelledError' || cancelled) {
      // One message, and nothing of the abandoned run (no half-filled chart or table).
      setApp({ status: 'idle', progress: null, reports: [], selected: null, notices: ['Run cancelled; nothing was kept.'] });
    } else {
      setApp({ status: 'error', error: out.error });
    }
    return;
  }
  const r = out.result;
  if (r.zipBlob) session.zip = r.zipBlob;
  const target = r.revision && t.target.model === s.repo.trim() ? { ...t.target, revision: r.revision } : t.target;
  setApp({
    status: 'done',
    result: {
      files: r.files,
      readme: r.readme,
      summary: r.summary,
      elapsedMs: r.elapsedMs,
      bytesWritten: r.bytesWritten,
      backend: r.backend,
      bundleName: name,
      zipReady: !!session.zip,
      zipBytes: session.zip?.size ?? 0,
      savedTo: r.savedTo ?? null,
      cliCommand: s.modelKind === 'files' ? cliCommand(`<path to ${t.modelArg}>`, settings, target.revision, calib) : cliCommand(t.modelArg, settings, target.revision, calib),
      link: `${location.origin}${location.pathname}${s.modelKind === 'files' ? shareQuery() : runQuery(target, settings, calib)}`,
      modelLabel: t.target.model,
      settings,
      modelKey: key,
    },
  });
  if (getApp().destination === 'opfs') void detectCapabilities(); // storage use changed
}

export async function cancel(): Promise<void> {
  if (getApp().status !== 'running') return;
  cancelled = true;
  session.zip = null;
  setApp({ notices: ['Cancelling…'] });
  await pipeline().cancel();
}

// ---- results -----------------------------------------------------------------------------

function saveBlob(blob: Blob, fileName: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  a.rel = 'noopener';
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** "Download bundle": the whole bundle as one .zip, an ordinary browser download. */
export async function downloadBundle(): Promise<void> {
  const r = getApp().result;
  if (!r) return;
  if (!session.zip) {
    // Written to OPFS or a folder: zip it from there.
    const where = getApp().destination === 'folder' && session.folder ? { kind: 'folder' as const, handle: session.folder } : { kind: 'opfs' as const };
    setApp({ saveState: { state: 'saving', message: 'Preparing the zip…' } });
    const out = await pipeline().api().zipFolder(where, r.bundleName);
    if (!out.ok) {
      setApp({ saveState: { state: 'error', message: out.error.message } });
      return;
    }
    session.zip = new Blob(out.zipBlocks, { type: 'application/zip' });
    setApp({ saveState: { state: 'idle', message: '' }, result: { ...r, zipReady: true, zipBytes: session.zip.size } });
  }
  saveBlob(session.zip, `${r.bundleName}.zip`);
}

export async function saveBundleTo(kind: 'folder' | 'opfs'): Promise<void> {
  const r = getApp().result;
  if (!r || !session.zip) return;
  let sink: { kind: 'opfs'; name: string } | { kind: 'folder'; handle: FileSystemDirectoryHandle; name: string } = { kind: 'opfs', name: r.bundleName };
  if (kind === 'folder') {
    try {
      const handle = await (window as unknown as { showDirectoryPicker(o: object): Promise<FileSystemDirectoryHandle> }).showDirectoryPicker({ mode: 'readwrite', id: 'quarot-bundles' });
      sink = { kind: 'folder', handle, name: r.bundleName };
    } catch {
      return;
    }
  }
  setApp({ saveState: { state: 'saving', message: 'Saving…' } });
  const out = await pipeline().api().saveZip(session.zip, sink);
  setApp({ saveState: out.ok ? { state: 'done', message: `Saved to ${out.savedTo}` } : { state: 'error', message: out.error.message } });
  if (kind === 'opfs') void detectCapabilities();
}

// ---- inspection --------------------------------------------------------------------------

export function selectTensor(name: string | null): void {
  setApp({ selected: name });
}

export async function compareBlocks(tensor: string): Promise<void> {
  const spec = sourceSpec();
  if (!spec) return;
  setApp({ comparison: { state: 'loading', tensor } });
  const out = await pipeline().api().compare(spec, getApp().settings, getApp().backend, tensor);
  if (getApp().comparison.tensor !== tensor) return;
  setApp({ comparison: out.ok ? { state: 'ok', tensor, data: out.comparison } : { state: 'error', tensor, error: out.error.message } });
}

export async function copyLink(): Promise<void> {
  let ok = true;
  try {
    await navigator.clipboard.writeText(shareLink());
  } catch {
    ok = false; // clipboard refused (permissions / insecure context): the link stays visible to copy by hand
  }
  setApp({ linkCopied: ok ? 'copied' : 'failed' });
  setTimeout(() => setApp({ linkCopied: null }), 2500);
}

/** Forget the run and its results (back to the picker). */
export function reset(): void {
  session.zip = null;
  setApp({ status: initialState.status, progress: null, reports: [], result: null, error: null, notices: [], selected: null, comparison: { state: 'idle' } });
  qualityOnNewRun('');
}
