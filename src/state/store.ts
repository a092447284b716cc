/**
 * The app's state: serialisable data only (no Files, handles, workers or tokens — those live in
 * ./session.ts). Components read it with selectors; ./actions.ts changes it.
 */
import { create } from 'zustand';
import type { TensorReport } from '../core/pipeline/report';
import { DEFAULT_SETTINGS, type QuantSettings, type SettingProblem } from '../core/settings';
import type { DemoModel } from '../demo/catalog';
import type { QualityProgress } from '../eval/check';
import { initialCalib, type CalibState } from './calibration';
import type { BackendCalibration, BackendChoice, BackendInfo, BlockComparison, Preflight, QualityDevice, QualityReport, RunProgress, WorkerCapabilities, WorkerError } from '../worker/protocol';

export type ModelKind = 'demo' | 'hub' | 'files';
export type RunStatus = 'idle' | 'running' | 'done' | 'error';
export type Destination = 'zip' | 'folder' | 'opfs';

export interface PageCapabilities {
  /** navigator.gpu on the page. */
  webgpu: boolean;
  adapter: string | null;
  worker: WorkerCapabilities | null;
  fileSystemAccess: boolean;
  opfs: boolean;
  /** Why browser storage (OPFS) cannot be used here, in words; null when it can. */
  opfsUnavailable: string | null;
  storage: { quota: number; usage: number } | null;
}

export interface ResultState {
  files: { path: string; size: number }[];
  readme: string;
  summary: string;
  elapsedMs: number;
  bytesWritten: number;
  backend: string;
  bundleName: string;
  /** A zip is ready for "Download bundle" (kept in session). */
  zipReady: boolean;
  zipBytes: number;
  savedTo: string | null;
  cliCommand: string;
  link: string;
  /** What the bundle was made from: the model shown and the settings (to tell a stale result). */
  modelLabel: string;
  settings: QuantSettings;
  /** The page's model when it ran (compared with the current one). */
  modelKey: string;
}

export type QualityTextKind = 'builtin' | 'demo' | 'wikitext2' | 'file';

/** "Check quality" (SPEC §7): its choices, the dropped inputs (described; Files are in session), the outcome. */
export interface QualityState {
  /** This run's bundle, or a bundle + original dropped on the panel. */
  target: 'run' | 'files';
  textKind: QualityTextKind;
  /** The person picked the text; until then it follows the model (built-in offline text, WikiText-2 for Hub models). */
  textChosen: boolean;
  /** Also quantize with plain RTN and compare both on the same windows (this run's bundle only). */
  compareRtn: boolean;
  /** The demo model whose evaluation text the last run's check can use ('' when the run was not such a demo). */
  runDemo: string;
  textFile: { name: string; bytes: number } | null;
  original: { label: string; count: number; bytes: number } | null;
  bundle: { label: string; count: number; bytes: number } | null;
  seqlen: number;
  /** First N windows; 0 = all. */
  windows: number;
  prompt: string;
  genTokens: number;
  device: QualityDevice;
  status: 'idle' | 'running' | 'done' | 'error';
  progress: QualityProgress | null;
  report: QualityReport | null;
  error: WorkerError | null;
  /** Where the figures went: into this run's bundle, or a returned card for a dropped bundle. */
  cardUpdated: 'bundle' | 'returned' | null;
  /** The updated README.md (a dropped bundle's, offered for download) / manifest.sha256 (when the bundle has one). */
  cardReadme: string | null;
  cardManifest: string | null;
}

export const initialQuality: QualityState = {
  target: 'run',
  textKind: 'builtin',
  textChosen: false,
  compareRtn: true,
  runDemo: '',
  textFile: null,
  original: null,
  bundle: null,
  seqlen: 256,
  windows: 8,
  prompt: 'Once upon a time',
  genTokens: 20,
  device: 'auto',
  status: 'idle',
  progress: null,
  report: null,
  error: null,
  cardUpdated: null,
  cardReadme: null,
  cardManifest: null,
};

export interface AppState {
  /** The link has been applied (model, settings); until then nothing can be run. */
  ready: boolean;
  modelKind: ModelKind;
  repo: string;
  revision: string;
  /** Another hub (from the link's hub=…), '' for huggingface.co. */
  hubUrl: string;
  /** Whether a token is held in session memory (the token itself never enters the store). */
  hasToken: boolean;
  demoName: string;
  demos: DemoModel[];
  demosError: string | null;
  /** Dropped/picked files: a label and counts (the File objects are in session). */
  files: { label: string; count: number; bytes: number } | null;

  settings: QuantSettings;
  /** Values of the opening link that could not be used (the default is shown instead); Run stays off until each is fixed or dismissed. */
  linkProblems: SettingProblem[];
  /** The bits-override text as typed (settings.bitsOverride holds the last one that parses) and its error. */
  overrideDraft: string;
  overrideDraftError: string | null;
  /** GPTQ's calibration: source, samples × seqlen, seed (src/state/calibration.ts). */
  calib: CalibState;
  backend: BackendChoice;
  destination: Destination;

  caps: PageCapabilities | null;
  preflight: { state: 'none' | 'loading' | 'ok' | 'error'; info?: Preflight; error?: WorkerError; key?: string };

  status: RunStatus;
  /** The latest progress event (throttled by the worker). */
  progress: RunProgress | null;
  /** Backend the run uses (reported by the worker once chosen). */
  backendInfo: BackendInfo | null;
  notices: string[];
  reports: TensorReport[];
  result: ResultState | null;
  error: WorkerError | null;
  /** Save-to-folder/OPFS after a zip run. */
  saveState: { state: 'idle' | 'saving' | 'done' | 'error'; message: string };

  selected: string | null;
  comparison: { state: 'idle' | 'loading' | 'ok' | 'error'; tensor?: string; data?: BlockComparison; error?: string };
  /** Feedback of the last 'Copy link'. */
  linkCopied: 'copied' | 'failed' | null;
  quality: QualityState;
  /** Measured cost of each backend (the worker's calibration), for estimates and "auto". */
  calibration: { state: 'none' | 'running' | 'done' | 'error'; backends: BackendCalibration[] };
}

export const initialState: AppState = {
  ready: false,
  modelKind: 'demo',
  repo: 'Qwen/Qwen2.5-0.5B',
  revision: 'main',
  hubUrl: '',
  hasToken: false,
  demoName: '',
  demos: [],
  demosError: null,
  files: null,
  settings: { ...DEFAULT_SETTINGS },
  linkProblems: [],
  overrideDraft: '',
  overrideDraftError: null,
  calib: { ...initialCalib },
  backend: 'auto',
  destination: 'zip',
  caps: null,
  preflight: { state: 'none' },
  status: 'idle',
  progress: null,
  backendInfo: null,
  notices: [],
  reports: [],
  result: null,
  error: null,
  saveState: { state: 'idle', message: '' },
  selected: null,
  comparison: { state: 'idle' },
  linkCopied: null,
  quality: { ...initialQuality },
  calibration: { state: 'none', backends: [] },
};

export const useApp = create<AppState>()(() => ({ ...initialState }));

/** Shorthand for actions. */
export const setApp = useApp.setState;
export const getApp = useApp.getState;
