/** Element types this tool reads and writes. */
export type Dtype = 'F32' | 'F16' | 'BF16';

export const DTYPE_BYTES: Record<Dtype, number> = { F32: 4, F16: 2, BF16: 2 };

/** One tensor as a safetensors header describes it; `begin`/`end` are absolute file offsets. */
export interface TensorInfo {
  name: string;
  dtype: Dtype;
  shape: number[];
  /** Absolute byte offset of the first element in the file (8 + headerLength + data_offsets[0]). */
  begin: number;
  /** Absolute byte offset one past the last element. */
  end: number;
}

export interface SafetensorsHeader {
  fileName: string;
  fileSize: number;
  headerLength: number;
  /** Absolute offset where the data section starts (8 + headerLength). */
  dataStart: number;
  /** Tensors in data order (ascending `begin`). */
  tensors: TensorInfo[];
  metadata: Record<string, string> | undefined;
}
