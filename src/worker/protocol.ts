/**
 * What crosses the page ↔ worker boundary. Everything here is structured-clone friendly:
 * plain objects, typed arrays, File/Blob and FileSystemDirectoryHandle (which browsers clone).
 */
import type { ProgressEvent } from '../core/pipeline/events';
import type { Preflight } from '../core/pipeline/preflight';
import type { RunEstimate } from '../core/progress';
import type { BackendCalibration } from '../core/estimate';
import type { TensorReport } from '../core/pipeline/report';
import type { QuantSettings } from '../core/settings';
import type { CalibrationSpec, RunTarget } from '../core/link';
import type { HubProgress } from '../sources/hub/progress';
import type { PathedFile } from '../sources/files/files-source';
import type { DemoModel } from '../demo/catalog';
import type { QualityCheckResult, QualityProgress } from '../eval/check';
import type { BundleComparison } from '../eval/compare-bundles';
import type { SweepPointResult, SweepProgress, SweepResult } from '../eval/sweep';
import type { SweepGrid } from '../eval/sweep-grid';

export type BackendChoice = 'auto' | 'webgpu' | 'cpu';
export type { BackendCalibration } from '../core/estimate';

export type SourceSpec =
  | { kind: 'hub'; repo: string; revision?: string; hubUrl?: string; /** Memory only; never echoed back. */ token?: string }
  | { kind: 'files'; files: PathedFile[]; /** Folder name when one was dropped. */ label: string }
  | { kind: 'demo'; /** Absolute URL of the demo folder (…/demo/). */ baseUrl: string; model: DemoModel };

export type SinkSpec =
  | { kind: 'zip' }
  | { kind: 'opfs'; name: string }
  | { kind: 'folder'; handle: FileSystemDirectoryHandle; name: string };

export interface WorkerError {
  name: string;
  message: string;
  file?: string;
  tensor?: string;
}

export type Outcome<T> = ({ ok: true } & T) | { ok: false; error: WorkerError };

export interface WorkerCapabilities {
  /** navigator.gpu exists inside the worker. */
  webgpu: boolean;
  /** An adapter could be had in the worker, and what it is. */
  adapter: { vendor: string; architecture: string; device: string; description: string } | null;
  adapterError?: string;
  /** OPFS writes with createSyncAccessHandle (worker-only API). */
  syncAccessHandles: boolean;
}

export type { Preflight, SettingsSuggestion } from '../core/pipeline/preflight';

export interface RunRequest {
  source: SourceSpec;
  settings: QuantSettings;
  backend: BackendChoice;
  sink: SinkSpec;
  /** What the model card records (target.model = demo folder name, Hub repo id, dropped folder name). */
  target: RunTarget;
  /** The CLI `--model` equivalent for the card's reproduction command. */
  modelArg: string;
  /** GPTQ runs: the calibration the worker builds (with the model's tokenizer) before any weight is read. */
  calibration?: CalibrationRequest;
}

/** Where a GPTQ run's calibration comes from (src/state/calibration.ts builds it). */
export interface CalibrationRequest {
  spec: CalibrationSpec;
  /** `file:<name>` specs: the dropped or picked file. */
  file?: Blob;
  fileName?: string;
  /** `demo`: the demo folder's calibration files, in order of preference. */
  demoFiles?: string[];
  /** Dataset specs: the hub to read from, and a token (memory only). */
  hubUrl?: string;
  token?: string;
}

export interface RunProgress extends ProgressEvent {
  download?: HubProgress;
  /** Fraction, read rate and smoothed ETA, measured in the worker over every event (src/core/progress.ts). */
  estimate?: RunEstimate;
}

export interface BackendInfo {
  name: 'cpu' | 'webgpu';
  description: string;
}

export interface RunResult {
  files: { path: string; size: number }[];
  readme: string;
  summary: string;
  elapsedMs: number;
  bytesRead: number;
  bytesWritten: number;
  backend: string;
  /** Resolved revision (Hub). */
  revision?: string;
  /**
   * Zip destination: the archive. A Blob, so the page and the worker (which keeps it for the
   * quality check) share one copy instead of each holding the bytes.
   */
  zipBlob?: Blob;
  /** Folder/OPFS destination: where it went. */
  savedTo?: string;
}

export interface CompareRow {
  label: string;
  rotation: 'none' | 'block' | 'full';
  blockSize: number | null;
  relError: number;
  sqnrDb: number;
}

export interface BlockComparison {
  tensor: string;
  bits: 4 | 8;
  rows: CompareRow[];
  /** Sizes that were skipped and why. */
  skipped: string[];
}

export interface RunCallbacks {
  onProgress(p: RunProgress): void;
  onTensor(r: TensorReport): void;
  onBackend(info: BackendInfo): void;
  onNotice(message: string): void;
}

/** Where the quality check's evaluation text comes from (SPEC §7). */
export type QualityTextSpec =
  /** The demo model's own evaluation text (its pre-tokenized ids when the folder has them). */
  | { kind: 'demo'; baseUrl: string; model: DemoModel }
  /** WikiText-2 raw test from the Hub dataset Salesforce/wikitext. */
  | { kind: 'wikitext2'; hubUrl?: string; /** Memory only. */ token?: string }
  /** A text file the person dropped or picked. */
  | { kind: 'file'; file: Blob; name: string }
  /** The built-in evaluation text shipped with the app (src/eval/builtin-text.ts): works offline. */
  | { kind: 'builtin' };

export type QualityDevice = 'auto' | 'webgpu' | 'cpu';

export interface QualityRequest {
  text: QualityTextSpec;
  seqlen: number;
  /** First N windows; undefined = all. */
  windows?: number;
  prompt?: string;
  genTokens: number;
  device: QualityDevice;
  /** Also quantize the same model with plain RTN (src/core/settings.ts plainRtnSettings) and score both on the same windows. */
  compareRtn?: { backend: BackendChoice };
}

export interface QualityReport extends QualityCheckResult {
  /** The figures as the model card shows them (qualityFigures). */
  figures: Record<string, number | string>;
  /** Percent change of perplexity, quantized vs original. */
  pplChangePct: number;
  /** Leading greedy tokens that agree. */
  genAgree?: number;
  /** Several bundles of the same model on the same windows, with the verdict by KL/perplexity. */
  comparison?: BundleComparison;
}

export interface QualityOutput {
  report: QualityReport;
  /** README.md with the "Quality check" section. */
  readme: string;
  /** manifest.sha256 with README.md's new line, when the bundle has one. */
  manifest?: string;
  /** Written back into the bundle (this run's) or only returned (a dropped bundle). */
  cardUpdated: 'bundle' | 'returned';
  /** This run's bundle files after the update (README/manifest sizes changed). */
  files?: { path: string; size: number }[];
  /** Zip destination: the archive with the updated card. */
  zipBlob?: Blob;
}

export interface QualityCallbacks {
  onProgress(p: QualityProgress): void;
}

/** The settings advisor: a grid of settings tried on the model, each scored (src/eval/sweep.ts). */
export interface AdviceRequest {
  source: SourceSpec;
  /** Everything but method, codebook and W8 budget, which each grid point sets. */
  settings: QuantSettings;
  grid: SweepGrid;
  backend: BackendChoice;
  target: RunTarget;
  modelArg: string;
  /** Needed when the grid has GPTQ or W8-budget points. */
  calibration?: CalibrationRequest;
  /** The text perplexity is scored on: the first `windows` windows of `seqlen` tokens. */
  text: QualityTextSpec;
  seqlen: number;
  windows: number;
}

export interface AdviceCallbacks {
  onProgress(p: SweepProgress): void;
  onPoint(r: SweepPointResult): void;
  onNotice(message: string): void;
}

export type AdviceResult = Omit<SweepResult, 'kept'>;

/** The worker's comlink API. */
export interface PipelineWorkerApi {
  capabilities(): Promise<WorkerCapabilities>;
  /** Time the real pipeline on two small generated models on each backend (src/worker/calibrate.ts). */
  calibrate(): Promise<Outcome<{ calibrations: BackendCalibration[] }>>;
  inspect(source: SourceSpec, settings: QuantSettings): Promise<Outcome<{ preflight: Preflight }>>;
  run(req: RunRequest, callbacks: RunCallbacks): Promise<Outcome<{ result: RunResult }>>;
  cancel(): Promise<void>;
  compare(source: SourceSpec, settings: QuantSettings, backend: BackendChoice, tensor: string): Promise<Outcome<{ comparison: BlockComparison }>>;
  /** Zip a finished folder bundle (OPFS or a picked folder) for download. */
  zipFolder(where: { kind: 'opfs' } | { kind: 'folder'; handle: FileSystemDirectoryHandle }, name: string): Promise<Outcome<{ zipBlocks: ArrayBuffer[] }>>;
  /** Quality check of the last run's bundle against the model it came from; updates the bundle's card. */
  checkQuality(req: QualityRequest, callbacks: QualityCallbacks): Promise<Outcome<QualityOutput>>;
  /** Quality check of a dropped bundle against a dropped original; returns the updated card. */
  checkQualityFiles(
    original: { files: PathedFile[]; label: string },
    bundle: { files: PathedFile[]; label: string },
    req: QualityRequest,
    callbacks: QualityCallbacks,
  ): Promise<Outcome<QualityOutput>>;
  cancelQuality(): Promise<void>;
  /** Try the grid's settings on the model (in memory, nothing saved) and report each point's perplexity and size. */
  advise(req: AdviceRequest, callbacks: AdviceCallbacks): Promise<Outcome<{ result: AdviceResult }>>;
  cancelAdvice(): Promise<void>;
  /** Write a downloaded-zip bundle into a folder sink (OPFS or a picked folder). */
  saveZip(zip: Blob, sink: Exclude<SinkSpec, { kind: 'zip' }>): Promise<Outcome<{ savedTo: string }>>;
}
