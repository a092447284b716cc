/** `calibrate`: the calibration forward pass and Hessians of a layer; `gptq`: GPTQ's column updates. */
export type Phase = 'prepare' | 'read' | 'transform' | 'calibrate' | 'gptq' | 'quantize' | 'write' | 'finalize' | 'done';

/** Progress of a run; sent often, small, structured-clone friendly. */
export interface ProgressEvent {
  phase: Phase;
  /** 0-based index of the tensor being processed (plan items), and their count. */
  tensorIndex: number;
  tensorCount: number;
  tensorName: string;
  /** Source tensor bytes read so far / to read in all. */
  bytesRead: number;
  bytesToRead: number;
  /** Bundle bytes written so far / planned for the safetensors files. */
  bytesWritten: number;
  bytesToWrite: number;
  elapsedMs: number;
  message?: string;
}
