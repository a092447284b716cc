import { InputError, throwIfAborted } from '../errors';
import { decodeToF32 } from './dtype';
import { DTYPE_BYTES, type TensorInfo } from './types';
import { type ByteSource } from '../ports';

async function readRange(src: ByteSource, info: TensorInfo, begin: number, end: number, signal?: AbortSignal): Promise<Uint8Array> {
  throwIfAborted(signal);
  const where = { file: src.name, tensor: info.name };
  if (end > src.size) {
    throw new InputError(
      `tensor ${info.name} in file ${src.name}: data ends at byte ${end} but the file is only ${src.size} bytes; truncated file`,
      where,
    );
  }
  if (end === begin) return new Uint8Array(0);
  const bytes = await src.read(begin, end - begin, signal);
  if (bytes.length !== end - begin) {
    throw new InputError(
      `tensor ${info.name} in file ${src.name}: read ${bytes.length} bytes at offset ${begin}, expected ${end - begin}; truncated file`,
      where,
    );
  }
  return bytes;
}

/** The raw little-endian bytes of one tensor (a single range read). */
export function readTensorBytes(src: ByteSource, info: TensorInfo, signal?: AbortSignal): Promise<Uint8Array> {
  return readRange(src, info, info.begin, info.end, signal);
}

/** One tensor decoded to f32. */
export async function readTensorF32(src: ByteSource, info: TensorInfo, signal?: AbortSignal): Promise<Float32Array> {
  return decodeToF32(await readTensorBytes(src, info, signal), info.dtype);
}

/**
 * Rows [firstRow, firstRow + rowCount) of a tensor (first dimension), decoded to f32, so huge
 * tensors such as a 272 MB embedding can be processed in tiles with bounded memory.
 */
export async function readTensorRowsF32(
  src: ByteSource,
  info: TensorInfo,
  firstRow: number,
  rowCount: number,
  signal?: AbortSignal,
): Promise<Float32Array> {
  const rows = info.shape.length === 0 ? 1 : info.shape[0];
  if (!Number.isInteger(firstRow) || !Number.isInteger(rowCount) || firstRow < 0 || rowCount < 0 || firstRow + rowCount > rows) {
    throw new RangeError(`readTensorRowsF32: rows [${firstRow}, ${firstRow + rowCount}) outside tensor ${info.name} with ${rows} rows`);
  }
  let rowElems = 1;
  for (let i = 1; i < info.shape.length; i++) rowElems *= info.shape[i];
  const rowBytes = rowElems * DTYPE_BYTES[info.dtype];
  const begin = info.begin + firstRow * rowBytes;
  const bytes = await readRange(src, info, begin, begin + rowCount * rowBytes, signal);
  return decodeToF32(bytes, info.dtype);
}
