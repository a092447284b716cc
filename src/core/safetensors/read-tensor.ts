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

/**
 * The first element of `bytes` (little-endian `dtype`) that is NaN or ±Inf, judged from the
 * exponent bits without decoding, or -1. One Inf in a weight makes its row's scale Inf and the
 * quantized row NaN, so the pipeline refuses such input instead of writing a NaN bundle.
 */
export function firstNonFinite(bytes: Uint8Array, dtype: TensorInfo['dtype']): { index: number; value: string } | undefined {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const show = (isNan: boolean, negative: boolean): string => (isNan ? 'NaN' : negative ? '-Inf' : '+Inf');
  if (dtype === 'F32') {
    const n = bytes.byteLength >>> 2;
    for (let i = 0; i < n; i++) {
      const u = dv.getUint32(i * 4, true);
      if ((u & 0x7f800000) === 0x7f800000) return { index: i, value: show((u & 0x007fffff) !== 0, u >>> 31 === 1) };
    }
    return undefined;
  }
  // F16: 5 exponent bits (0x7c00); BF16: the top half of an f32 (0x7f80).
  const [exp, mant] = dtype === 'F16' ? [0x7c00, 0x03ff] : [0x7f80, 0x007f];
  const n = bytes.byteLength >>> 1;
  for (let i = 0; i < n; i++) {
    const u = dv.getUint16(i * 2, true);
    if ((u & exp) === exp) return { index: i, value: show((u & mant) !== 0, u >>> 15 === 1) };
  }
  return undefined;
}

/** `readTensorBytes`, refusing a tensor that holds NaN or ±Inf (naming it and the first bad element). */
export async function readFiniteTensorBytes(src: ByteSource, info: TensorInfo, signal?: AbortSignal): Promise<Uint8Array> {
  const bytes = await readTensorBytes(src, info, signal);
  refuseNonFinite(bytes, src, info, 0);
  return bytes;
}

/**
 * The raw bytes of rows [firstRow, firstRow + rowCount) of a tensor (first dimension), refusing
 * NaN or ±Inf like `readFiniteTensorBytes` (the element named by its place in the whole tensor).
 */
export async function readFiniteTensorRowBytes(src: ByteSource, info: TensorInfo, firstRow: number, rowCount: number, signal?: AbortSignal): Promise<Uint8Array> {
  const rows = info.shape.length === 0 ? 1 : info.shape[0];
  if (!Number.isInteger(firstRow) || !Number.isInteger(rowCount) || firstRow < 0 || rowCount < 0 || firstRow + rowCount > rows) {
    throw new RangeError(`readFiniteTensorRowBytes: rows [${firstRow}, ${firstRow + rowCount}) outside tensor ${info.name} with ${rows} rows`);
  }
  let rowElems = 1;
  for (let i = 1; i < info.shape.length; i++) rowElems *= info.shape[i];
  const rowBytes = rowElems * DTYPE_BYTES[info.dtype];
  const begin = info.begin + firstRow * rowBytes;
  const bytes = await readRange(src, info, begin, begin + rowCount * rowBytes, signal);
  refuseNonFinite(bytes, src, info, firstRow * rowElems);
  return bytes;
}

function refuseNonFinite(bytes: Uint8Array, src: ByteSource, info: TensorInfo, firstElement: number): void {
  const found = firstNonFinite(bytes, info.dtype);
  if (!found) return;
  const bad = { ...found, index: found.index + firstElement };
  // Row-major position, e.g. [12, 34], so the value can be found with any tensor viewer.
  const pos: number[] = [];
  let rest = bad.index;
  for (let d = info.shape.length - 1; d >= 0; d--) {
    pos.unshift(rest % info.shape[d]);
    rest = Math.floor(rest / info.shape[d]);
  }
  throw new InputError(
    `tensor ${info.name} in file ${src.name} holds a non-finite value (${bad.value}) at element ${bad.index}` +
      `${pos.length > 1 ? ` (index [${pos.join(', ')}])` : ''}; quantizing it would give NaN weights. Use a checkpoint without NaN/Inf weights`,
    { file: src.name, tensor: info.name },
  );
}
