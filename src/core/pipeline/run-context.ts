import type { Backend, Mat, SpoolFactory } from '../ports';
import type { ProjectionSensitivity } from '../quant/mixed-precision';
import type { QuantSettings } from '../settings';
import type { Phase } from './events';
import type { TensorOutputs } from './outputs';
import type { PreparedRun } from './prepare';
import type { TensorReport } from './report';
import type { TensorReader } from './tensor-reader';

/** What every stage of a run shares: the backend, the prepared plan, the reader and the outputs. */
export interface RunContext {
  backend: Backend;
  prep: PreparedRun;
  settings: QuantSettings;
  reader: TensorReader;
  outputs: TensorOutputs;
  signal?: AbortSignal;
  /** Matrices above this many bytes of f32 are processed in tiles (tiled.ts). */
  tileBytes: number;
  /** Scratch space for tiled matrices (a temp file in Node); absent: re-read and re-transform, memory where unavoidable. */
  spool?: SpoolFactory;
  /** Norm gains, kept (they are small) for fusion into the linears that follow them in the plan. */
  gammas: Map<string, Float32Array>;
  /** A tied model's head starts from a copy of the embedding, made while it is on the backend. */
  embeddingCopy: Mat | null;
  emit(phase: Phase, message?: string): void;
  /** Record a tensor's report (the app streams them into its table). */
  report(r: TensorReport): void;
  /** Say which plan item is being worked on. */
  at(index: number): void;
  /**
   * Set by the W8 budget's measuring pass: each quantized projection's layer-output sensitivity
   * (gptq-layer.ts measureLayerSensitivity), measured layer by layer with calibration data.
   */
  sensitivity?: (s: ProjectionSensitivity) => void;
}
