/**
 * What crosses the page ↔ worker boundary. Everything here is structured-clone friendly:
 * plain objects, typed arrays, File/Blob and FileSystemDirectoryHandle (which browsers clone).
 */
import type { ProgressEvent } from '../core/pipeline/events';
import type { TensorReport } from '../core/pipeline/report';
import type { QuantSettings } from '../core/settings';
import type { RunTarget } from '../core/link';
import type { HubProgress } from '../sources/hub/progress';
import type { PathedFile } from '../sources/files/files-source';
import type { DemoModel } from '../demo/catalog';

export type BackendChoice = 'auto' | 'webgpu' | 'cpu';

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

export interface Preflight {
  label: string;
  repo?: string;
  revision?: string;
  files: { path: string; size: number }[];
  /** Sum of every file's size. */
  fileBytes: number;
  /** Tensor data the run reads. */
  tensorBytes: number;
  tensorCount: number;
  /** Plan items (norms + matrices) the run processes. */
  planItems: number;
  quantizedCount: number;
  parameters: number;
  dtypes: string[];
  /** Bytes of the bundle's safetensors files plus pass-through files (README/JSON excluded). */
  outputBytes: number;
  config: { hidden: number; intermediate: number; layers: number; heads: number; kvHeads: number; headDim: number; vocab: number; tied: boolean };
  /** Hadamard chosen for the residual stream, or why none fits. */
  hadamard: string | null;
}

export interface RunRequest {
  source: SourceSpec;
  settings: QuantSettings;
  backend: BackendChoice;
  sink: SinkSpec;
  /** What the model card records (target.model = demo folder name, Hub repo id, dropped folder name). */
  target: RunTarget;
  /** The CLI `--model` equivalent for the card's reproduction command. */
  modelArg: string;
}

export interface RunProgress extends ProgressEvent {
  download?: HubProgress;
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
  /** Zip destination: the archive in owned blocks (transferred, not copied). */
  zipBlocks?: ArrayBuffer[];
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

/** The worker's comlink API. */
export interface PipelineWorkerApi {
  capabilities(): Promise<WorkerCapabilities>;
  inspect(source: SourceSpec, settings: QuantSettings): Promise<Outcome<{ preflight: Preflight }>>;
  run(req: RunRequest, callbacks: RunCallbacks): Promise<Outcome<{ result: RunResult }>>;
  cancel(): Promise<void>;
  compare(source: SourceSpec, settings: QuantSettings, backend: BackendChoice, tensor: string): Promise<Outcome<{ comparison: BlockComparison }>>;
  /** Zip a finished folder bundle (OPFS or a picked folder) for download. */
  zipFolder(where: { kind: 'opfs' } | { kind: 'folder'; handle: FileSystemDirectoryHandle }, name: string): Promise<Outcome<{ zipBlocks: ArrayBuffer[] }>>;
  /** Write a downloaded-zip bundle into a folder sink (OPFS or a picked folder). */
  saveZip(zip: Blob, sink: Exclude<SinkSpec, { kind: 'zip' }>): Promise<Outcome<{ savedTo: string }>>;
}
