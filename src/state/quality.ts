/**
 * "Check quality" actions and the little the panel shows that is not a plain field: which
 * evaluation texts are on offer, progress labels. The check itself runs in the worker.
 */
import type { QualityProgress } from '../eval/check';
import type { DemoModel } from '../demo/catalog';
import { filesFromDataTransfer } from '../sources/files/data-transfer';
import { filesFromFileList, stripCommonFolder, type PathedFile } from '../sources/files/files-source';
import type { QualityCallbacks, QualityOutput, QualityRequest, QualityTextSpec } from '../worker/protocol';
import { resolveBackend } from './derive';
import { pipeline, session } from './session';
import { getApp, setApp, type QualityState, type QualityTextKind } from './store';
import { isPlainRtn } from '../core/settings';

function q(): QualityState {
  return getApp().quality;
}

function setQ(patch: Partial<QualityState>): void {
  setApp({ quality: { ...q(), ...patch } });
}

export function setQuality<K extends keyof QualityState>(key: K, value: QualityState[K]): void {
  setQ({ [key]: value } as Partial<QualityState>);
}

function demoModel(name: string): DemoModel | undefined {
  const m = getApp().demos.find((d) => d.name === name);
  return m && (m.calibration || m.calibrationTokens) ? m : undefined;
}

/** Whether the check can use this run's bundle (a finished run whose bundle the worker still holds). */
export function runTargetAvailable(): boolean {
  const s = getApp();
  return s.status === 'done' && !!s.result;
}

export function effectiveTarget(): QualityState['target'] {
  return runTargetAvailable() ? q().target : 'files';
}

/** The texts on offer: the built-in one always (offline); the demo's own only when checking that demo's run. */
export function textChoices(): { kind: QualityTextKind; label: string }[] {
  const s = getApp();
  const out: { kind: QualityTextKind; label: string }[] = [{ kind: 'builtin', label: 'Built-in evaluation text (offline, ~6 kB of plain English)' }];
  const demo = effectiveTarget() === 'run' && s.quality.runDemo ? demoModel(s.quality.runDemo) : undefined;
  if (demo) out.push({ kind: 'demo', label: `${demo.name} evaluation text (${demo.calibrationTokens ?? demo.calibration})` });
  out.push({ kind: 'wikitext2', label: `WikiText-2 raw test (${s.hubUrl || 'huggingface.co'}, Salesforce/wikitext — needs the Hub)` });
  out.push({ kind: 'file', label: 'A text file (.txt)…' });
  return out;
}

/**
 * Until the person picks one: WikiText-2 for a Hub model's run (the Hub is reachable then), the
 * built-in text otherwise — demos and dropped folders work offline.
 */
export function effectiveTextKind(): QualityTextKind {
  const kinds = textChoices().map((c) => c.kind);
  if (!q().textChosen) return effectiveTarget() === 'run' && getApp().result && getApp().modelKind === 'hub' ? 'wikitext2' : 'builtin';
  return kinds.includes(q().textKind) ? q().textKind : 'builtin';
}

export function chooseText(kind: QualityTextKind): void {
  setQ({ textKind: kind, textChosen: true });
}

/** "Use the built-in text" after a failed fetch: switch and check again, in one click. */
export function useBuiltinTextAndRun(): void {
  chooseText('builtin');
  void runQuality();
}

/** Called by run(): the previous check's figures belonged to the previous bundle. */
export function qualityOnNewRun(demoName: string): void {
  if (q().status === 'running') void pipeline().api().cancelQuality();
  const hasText = !!demoModel(demoName);
  setQ({
    status: 'idle', progress: null, report: null, error: null, cardUpdated: null, cardReadme: null, cardManifest: null,
    target: 'run',
    runDemo: hasText ? demoName : '',
    // A chosen demo text does not carry over to another model.
    ...(!hasText && q().textKind === 'demo' ? { textKind: 'builtin' as const, textChosen: false } : {}),
  });
}

// ---- inputs ------------------------------------------------------------------------------

export function setQualityTextFile(file: File | null): void {
  session.qualityText = file;
  setQ({ textFile: file ? { name: file.name, bytes: file.size } : null, ...(file ? { textKind: 'file' as const, textChosen: true } : {}) });
}

function describe(files: PathedFile[]): { label: string; count: number; bytes: number } | null {
  if (!files.length) return null;
  const first = files[0].path.split('/');
  const label = first.length > 1 && files.every((f) => f.path.split('/')[0] === first[0]) ? first[0] : `${files.length} files`;
  return { label, count: files.length, bytes: files.reduce((s, f) => s + f.file.size, 0) };
}

export function setPairFiles(which: 'original' | 'bundle', files: PathedFile[]): void {
  const kept = files.filter((f) => !f.path.split('/').some((s) => s.startsWith('.') || s === '__MACOSX'));
  const info = describe(kept);
  const stripped = stripCommonFolder(kept);
  if (which === 'original') session.qualityOriginal = stripped;
  else session.qualityBundle = stripped;
  setQ({ [which]: info, target: 'files' } as Partial<QualityState>);
}

export async function dropPairFiles(which: 'original' | 'bundle', dt: DataTransfer): Promise<void> {
  setPairFiles(which, await filesFromDataTransfer(dt));
}

export function pickPairFiles(which: 'original' | 'bundle', list: FileList | null): void {
  if (list && list.length) setPairFiles(which, filesFromFileList(list));
}

// ---- run / cancel ------------------------------------------------------------------------

function textSpec(): QualityTextSpec | string {
  const kind = effectiveTextKind();
  if (kind === 'demo') {
    const m = demoModel(q().runDemo);
    if (!m) return 'the demo model has no evaluation text';
    return { kind: 'demo', baseUrl: new URL('demo/', document.baseURI).href, model: m };
  }
  if (kind === 'file') {
    if (!session.qualityText) return 'choose or drop a text file first';
    return { kind: 'file', file: session.qualityText, name: session.qualityText.name };
  }
  if (kind === 'builtin') return { kind: 'builtin' };
  return { kind: 'wikitext2', hubUrl: getApp().hubUrl || undefined, token: session.token || undefined };
}

/** Plain RTN beside this run's bundle, unless the run already was plain RTN (rotation none, RTN, grid, no budget or overrides). */
export function rtnComparisonAvailable(): boolean {
  const r = getApp().result;
  return effectiveTarget() === 'run' && !!r && !isPlainRtn(r.settings);
}

export async function runQuality(): Promise<void> {
  const st = q();
  if (st.status === 'running') return;
  const target = effectiveTarget();
  const text = textSpec();
  const fail = (message: string) => setQ({ status: 'error', error: { name: 'InputError', message }, report: null, progress: null });
  if (typeof text === 'string') return fail(`No evaluation text: ${text}.`);
  if (target === 'files' && (!session.qualityOriginal.length || !session.qualityBundle.length)) {
    return fail('Drop (or choose) both the original model and the bundle to compare.');
  }
  const req: QualityRequest = {
    text,
    seqlen: st.seqlen,
    windows: st.windows > 0 ? st.windows : undefined,
    prompt: st.prompt.trim() ? st.prompt : undefined,
    genTokens: st.genTokens,
    device: st.device,
  };
  if (target === 'run' && st.compareRtn && rtnComparisonAvailable()) {
    const s = getApp();
    req.compareRtn = { backend: resolveBackend(s.backend, s.preflight.info, s.result!.settings, s.calibration.backends).backend };
  }
  setQ({ status: 'running', progress: null, report: null, error: null, cardUpdated: null, cardReadme: null, cardManifest: null });
  const cb: QualityCallbacks = {
    onProgress: (p) => {
      if (q().status === 'running') setQ({ progress: p });
    },
  };
  const out =
    target === 'run'
      ? await pipeline().checkQuality(req, cb)
      : await pipeline().checkQualityFiles(
          { files: session.qualityOriginal, label: st.original?.label ?? 'original' },
          { files: session.qualityBundle, label: st.bundle?.label ?? 'bundle' },
          req,
          cb,
        );
  if (!out.ok) {
    if (out.error.name === 'CancelledError') setQ({ status: 'idle', progress: null });
    else setQ({ status: 'error', error: out.error, progress: null });
    return;
  }
  applyOutput(out, target);
}

function applyOutput(out: QualityOutput, target: QualityState['target']): void {
  setQ({ status: 'done', progress: null, report: out.report, cardUpdated: out.cardUpdated, cardReadme: target === 'files' ? out.readme : null, cardManifest: out.manifest ?? null });
  const r = getApp().result;
  if (target !== 'run' || !r) return;
  // The bundle's card changed: the preview, the file list and the download follow it.
  if (out.zipBlob) session.zip = out.zipBlob;
  else session.zip = null; // a folder/OPFS bundle is zipped again, from the updated files, on download
  setApp({ result: { ...r, readme: out.readme, files: out.files ?? r.files, zipReady: !!session.zip, zipBytes: session.zip?.size ?? 0 } });
}

export async function cancelQuality(): Promise<void> {
  if (q().status !== 'running') return;
  setQ({ progress: { stage: 'cancelling', done: 0, total: 1 } });
  await pipeline().api().cancelQuality();
}

/** A dropped bundle's updated card file, as a browser download. */
export function downloadCardFile(which: 'README.md' | 'manifest.sha256'): void {
  const text = which === 'README.md' ? q().cardReadme : q().cardManifest;
  if (text === null) return;
  const url = URL.createObjectURL(new Blob([text], { type: 'text/plain' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = which;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

// ---- what the panel shows ----------------------------------------------------------------

const STAGE_LABEL: Record<string, string> = {
  'quantize-rtn': 'quantizing with plain RTN (for the comparison)',
  text: 'reading the evaluation text',
  open: 'opening both models',
  'load-original': 'loading the original weights',
  'load-bundle': 'loading the bundle weights',
  tokenize: 'tokenizing',
  evaluate: 'scoring windows',
  generate: 'generating',
  cancelling: 'cancelling…',
};

export function qualityProgressView(p: QualityProgress | null): { label: string; fraction: number; count: string } {
  if (!p) return { label: 'starting…', fraction: 0, count: '' };
  // "evaluate:plain RTN (rotation none)": a stage of the comparison's second bundle.
  const [stage, of] = p.stage.split(/:(.*)/s);
  const fraction = p.total > 0 ? Math.min(1, p.done / p.total) : 0;
  const count = stage === 'evaluate' ? `window ${p.done}/${p.total}` : stage.startsWith('load') || stage === 'quantize-rtn' ? `tensor ${p.done}/${p.total}` : '';
  const label = STAGE_LABEL[stage] ?? stage;
  return { label: of ? `${label} — ${of}` : label, fraction, count };
}
