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

/**
 * Random-access bytes: a local file, a `File`, an HTTP resource read with range requests.
 * `read` returns exactly `length` bytes or throws.
 */
export interface ByteSource {
  readonly name: string;
  readonly size: number;
  read(offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array>;
}

/** Where a model's files come from (a folder, dropped files, a Hub repo). */
export interface ModelSource {
  /** Human label: a path, "dropped files", or "org/repo@sha". */
  readonly label: string;
  /** Hub repo id and resolved commit sha, when the source is the Hub. */
  readonly repo?: string;
  readonly revision?: string;
  /** Relative paths of every file the source has (e.g. "config.json", "model.safetensors"). */
  listFiles(): Promise<string[]>;
  open(path: string): Promise<ByteSource>;
  /**
   * Optional read-ahead hint (the Hub source coalesces these into few large range requests):
   * the byte ranges of `path` the pipeline is going to read, in the order it will read them.
   */
  prefetch?(path: string, ranges: { offset: number; length: number }[]): Promise<void>;
}

/** One output file being written sequentially. */
export interface FileWriter {
  write(chunk: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

/** Where a bundle goes (a folder on disk, a zip stream, OPFS, memory). */
export interface BundleSink {
  readonly label: string;
  /** Open `path` (relative to the bundle root) for sequential writing; `size` is the final size when known. */
  createFile(path: string, size?: number): Promise<FileWriter>;
  /** Everything written: verify and make the bundle visible as complete. */
  finalize(): Promise<void>;
  /** Failure or cancellation: remove/invalidate whatever was written so nothing looks complete. */
  abort(reason?: unknown): Promise<void>;
}
