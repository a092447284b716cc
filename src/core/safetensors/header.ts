import { InputError, throwIfAborted } from '../errors';
import { DTYPE_BYTES, type Dtype, type SafetensorsHeader, type TensorInfo } from './types';
import { type ByteSource } from '../ports';

/** Real headers are tens of KB; anything this big is corrupt or hostile, so refuse before reading it. */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

const SUPPORTED = 'expected F32, F16 or BF16';

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

function tooShort(fileName: string, fileSize: number): InputError {
  return new InputError(
    `${fileName} is too short to be a safetensors file: ${fileSize} bytes, expected at least 8 (the header length)`,
    { file: fileName },
  );
}

/**
 * The header length from the first 8 bytes, checked against the file size. Split out so
 * `readSafetensorsHeader` can refuse a lying length before reading that many bytes.
 */
export function headerLengthFromPrefix(prefix8: Uint8Array, fileName: string, fileSize: number): number {
  const where = { file: fileName };
  if (fileSize < 8) throw tooShort(fileName, fileSize);
  if (prefix8.length < 8) {
    throw new InputError(`${fileName}: got ${prefix8.length} bytes of the 8-byte header length prefix; truncated read`, where);
  }
  const dv = new DataView(prefix8.buffer, prefix8.byteOffset, 8);
  const lo = dv.getUint32(0, true);
  const hi = dv.getUint32(4, true);
  const len = hi * 2 ** 32 + lo; // may be inexact above 2^53, but then it is absurd anyway
  if (len === 0) {
    throw new InputError(`${fileName}: safetensors header length is 0; expected a JSON header of at least 2 bytes`, where);
  }
  if (len > MAX_HEADER_BYTES) {
    throw new InputError(
      `${fileName}: safetensors header length ${len} bytes is absurd (limit ${MAX_HEADER_BYTES} bytes = 100 MB); the file is corrupt or not safetensors`,
      where,
    );
  }
  if (8 + len > fileSize) {
    throw new InputError(
      `${fileName}: safetensors header length ${len} bytes runs past the end of the file (header would end at byte ${8 + len}, file is ${fileSize} bytes); truncated file or not safetensors`,
      where,
    );
  }
  return len;
}

function isSafeNonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function parseEntry(name: string, entry: unknown, fileName: string, dataStart: number, fileSize: number): TensorInfo {
  const where = { file: fileName, tensor: name };
  const at = `tensor ${name} in file ${fileName}`;
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
    throw new InputError(`${at}: header entry must be an object with dtype, shape and data_offsets; found ${describe(entry)}`, where);
  }
  const e = entry as Record<string, unknown>;

  const dtype = e.dtype;
  if (typeof dtype !== 'string') {
    throw new InputError(`${at}: dtype must be a string (${SUPPORTED}); found ${describe(dtype)}`, where);
  }
  if (!Object.prototype.hasOwnProperty.call(DTYPE_BYTES, dtype)) {
    throw new InputError(`unsupported dtype ${dtype} for tensor ${name} in file ${fileName}; ${SUPPORTED}`, where);
  }
  const size = DTYPE_BYTES[dtype as Dtype];

  const shape = e.shape;
  if (!Array.isArray(shape) || !shape.every(isSafeNonNegInt)) {
    throw new InputError(`${at}: shape must be an array of non-negative integers; found ${JSON.stringify(shape) ?? 'nothing'}`, where);
  }
  let count = 1;
  for (const d of shape as number[]) count *= d;
  const needed = count * size;
  if (!Number.isSafeInteger(needed)) {
    throw new InputError(`${at}: shape ${JSON.stringify(shape)} is too large (${needed} bytes)`, where);
  }

  const offs = e.data_offsets;
  if (!Array.isArray(offs) || offs.length !== 2 || !offs.every(isSafeNonNegInt)) {
    throw new InputError(
      `${at}: data_offsets must be [begin, end] with non-negative integers; found ${JSON.stringify(offs) ?? 'nothing'}`,
      where,
    );
  }
  const [begin, end] = offs as [number, number];
  if (begin > end) {
    throw new InputError(`${at}: data_offsets [${begin}, ${end}] has begin after end; expected begin ≤ end`, where);
  }
  if (end - begin !== needed) {
    throw new InputError(
      `${at}: data_offsets [${begin}, ${end}] span ${end - begin} bytes but shape ${JSON.stringify(shape)} of ${dtype} needs ${needed} bytes`,
      where,
    );
  }
  if (dataStart + end > fileSize) {
    throw new InputError(
      `${at}: data_offsets [${begin}, ${end}] end at byte ${dataStart + end} of the file, past its end (file is ${fileSize} bytes); truncated file or lying header`,
      where,
    );
  }
  return { name, dtype: dtype as Dtype, shape: (shape as number[]).slice(), begin: dataStart + begin, end: dataStart + end };
}

/**
 * Parse and validate a safetensors header. `prefix8` is the file's first 8 bytes and
 * `headerJson` the following `headerLength` bytes.
 */
export function parseSafetensorsHeader(
  prefix8: Uint8Array,
  headerJson: Uint8Array,
  fileName: string,
  fileSize: number,
): SafetensorsHeader {
  const headerLength = headerLengthFromPrefix(prefix8, fileName, fileSize);
  const where = { file: fileName };
  if (headerJson.length !== headerLength) {
    throw new InputError(
      `${fileName}: got ${headerJson.length} header bytes, expected ${headerLength} (the length in the first 8 bytes)`,
      where,
    );
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerJson);
  } catch {
    throw new InputError(`${fileName}: safetensors header is not valid UTF-8; expected a UTF-8 JSON object`, where);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new InputError(
      `${fileName}: safetensors header is not valid JSON (${err instanceof Error ? err.message : String(err)}); expected a JSON object`,
      where,
    );
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new InputError(`${fileName}: safetensors header must be a JSON object; found ${describe(parsed)}`, where);
  }

  const dataStart = 8 + headerLength;
  let metadata: Record<string, string> | undefined;
  const tensors: TensorInfo[] = [];
  for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (key === '__metadata__') {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new InputError(`${fileName}: __metadata__ must be an object of string values; found ${describe(value)}`, where);
      }
      metadata = {};
      for (const [mk, mv] of Object.entries(value as Record<string, unknown>)) {
        if (typeof mv !== 'string') {
          throw new InputError(`${fileName}: __metadata__ value for ${JSON.stringify(mk)} must be a string; found ${describe(mv)}`, where);
        }
        metadata[mk] = mv;
      }
      continue;
    }
    tensors.push(parseEntry(key, value, fileName, dataStart, fileSize));
  }

  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  // Zero-size tensors own no bytes, so they cannot overlap anything.
  let prev: TensorInfo | undefined;
  for (const t of tensors) {
    if (t.end === t.begin) continue;
    if (prev && t.begin < prev.end) {
      const rel = (x: number) => x - dataStart;
      throw new InputError(
        `${fileName}: tensors ${prev.name} (data_offsets [${rel(prev.begin)}, ${rel(prev.end)}]) and ${t.name} (data_offsets [${rel(t.begin)}, ${rel(t.end)}]) overlap; expected disjoint byte ranges`,
        { file: fileName, tensor: t.name },
      );
    }
    prev = t;
  }

  return { fileName, fileSize, headerLength, dataStart, tensors, metadata };
}

/** Read (two range reads) and validate the header of one safetensors file. */
export async function readSafetensorsHeader(src: ByteSource, signal?: AbortSignal): Promise<SafetensorsHeader> {
  throwIfAborted(signal);
  if (src.size < 8) throw tooShort(src.name, src.size);
  const prefix = await src.read(0, 8, signal);
  const len = headerLengthFromPrefix(prefix, src.name, src.size);
  throwIfAborted(signal);
  const json = await src.read(8, len, signal);
  return parseSafetensorsHeader(prefix, json, src.name, src.size);
}
