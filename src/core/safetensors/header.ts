import { clipForMessage, InputError, throwIfAborted } from '../errors';
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

/** A shape or offsets value for a message: short arrays of scalars verbatim, anything else described (never a deep JSON.stringify). */
function brief(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (Array.isArray(v) && v.length <= 8 && v.every((x) => x === null || typeof x !== 'object')) {
    return clipForMessage(JSON.stringify(v), 200);
  }
  if (Array.isArray(v)) return `an array of ${v.length} entries`;
  return describe(v);
}

/** JSON nesting of a valid header: object → tensor entry → shape / data_offsets array. */
const MAX_HEADER_DEPTH = 3;

/**
 * What JSON.parse cannot tell: duplicate keys (it keeps the last silently, other readers the
 * first), numbers written as `1.0`/`1e0` (safetensors offsets and shapes are integers; other
 * readers refuse them) and needless nesting. Runs over text JSON.parse has accepted, without
 * recursion, so a 10,000-deep header cannot exhaust the stack.
 */
function scanHeaderText(text: string, fileName: string): void {
  const where = { file: fileName };
  interface Frame { isObject: boolean; keys: Set<string>; key?: string; expectKey: boolean }
  const stack: Frame[] = [];
  const place = (): string => {
    const tensor = stack.length > 1 ? stack[0].key : undefined;
    if (tensor === undefined) return 'at the top level';
    const field = stack.length > 2 && stack[1].key !== undefined ? ` (${clipForMessage(stack[1].key, 40)})` : '';
    return tensor === '__metadata__' ? `in __metadata__${field}` : `in the entry of tensor ${clipForMessage(tensor)}${field}`;
  };
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i + 1;
      for (; j < n; j++) {
        const d = text.charCodeAt(j);
        if (d === 0x5c /* \ */) j++;
        else if (d === 0x22) break;
      }
      const top = stack[stack.length - 1];
      if (top?.isObject && top.expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.keys.has(key)) {
          throw new InputError(
            `${fileName}: the safetensors header has the key ${JSON.stringify(clipForMessage(key))} twice ${place()}; readers disagree on which one counts, so the file is ambiguous — re-save it`,
            where,
          );
        }
        top.keys.add(key);
        top.key = key;
        top.expectKey = false;
      }
      i = j;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (stack.length >= MAX_HEADER_DEPTH) {
        throw new InputError(
          `${fileName}: the safetensors header nests JSON deeper than ${MAX_HEADER_DEPTH} levels ${place()}; expected {tensor: {dtype, shape: [..], data_offsets: [..]}}`,
          where,
        );
      }
      stack.push({ isObject: c === 0x7b, keys: new Set(), expectKey: c === 0x7b });
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
    } else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top?.isObject) top.expectKey = true;
    } else if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) {
      let j = i + 1;
      while (j < n && /[0-9.eE+-]/.test(text[j])) j++;
      const num = text.slice(i, j);
      if (!/^-?(0|[1-9][0-9]*)$/.test(num) || num === '-0') {
        throw new InputError(
          `${fileName}: the safetensors header writes the number ${clipForMessage(num, 40)} ${place()}; shapes and data_offsets must be plain integers (no fraction, exponent or -0)`,
          where,
        );
      }
      i = j - 1;
    }
  }
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
  const where = { file: fileName, tensor: clipForMessage(name) };
  const at = `tensor ${clipForMessage(name)} in file ${fileName}`;
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
    throw new InputError(`${at}: header entry must be an object with dtype, shape and data_offsets; found ${describe(entry)}`, where);
  }
  const e = entry as Record<string, unknown>;

  const dtype = e.dtype;
  if (typeof dtype !== 'string') {
    throw new InputError(`${at}: dtype must be a string (${SUPPORTED}); found ${describe(dtype)}`, where);
  }
  if (!Object.prototype.hasOwnProperty.call(DTYPE_BYTES, dtype)) {
    throw new InputError(`unsupported dtype ${clipForMessage(dtype, 40)} for ${at}; ${SUPPORTED}`, where);
  }
  const size = DTYPE_BYTES[dtype as Dtype];

  const shape = e.shape;
  if (!Array.isArray(shape) || !shape.every(isSafeNonNegInt)) {
    throw new InputError(`${at}: shape must be an array of non-negative integers; found ${brief(shape)}`, where);
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
      `${at}: data_offsets must be [begin, end] with non-negative integers; found ${brief(offs)}`,
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
    // ignoreBOM keeps a byte order mark in the text, so it is refused below rather than skipped.
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerJson);
  } catch {
    throw new InputError(`${fileName}: safetensors header is not valid UTF-8; expected a UTF-8 JSON object`, where);
  }
  if (text.charCodeAt(0) === 0xfeff) {
    throw new InputError(`${fileName}: safetensors header starts with a byte order mark (EF BB BF); expected the JSON object right after the 8-byte length`, where);
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
  scanHeaderText(text, fileName);

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
          throw new InputError(`${fileName}: __metadata__ value for ${JSON.stringify(clipForMessage(mk))} must be a string; found ${describe(mv)}`, where);
        }
        // defineProperty, not assignment: a key named __proto__ is data like any other, not the prototype.
        Object.defineProperty(metadata, mk, { value: mv, enumerable: true, writable: true, configurable: true });
      }
      continue;
    }
    tensors.push(parseEntry(key, value, fileName, dataStart, fileSize));
  }

  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  // The tensors must tile the data section exactly (safetensors forbids holes and trailing bytes):
  // a header length that points into its own padding shifts every tensor and shows up here.
  // Zero-size tensors own no bytes, so they cannot overlap or fill anything.
  const rel = (x: number) => x - dataStart;
  const name = (t: TensorInfo) => clipForMessage(t.name);
  let prev: TensorInfo | undefined;
  let pos = dataStart;
  for (const t of tensors) {
    if (t.end === t.begin) continue;
    if (prev && t.begin < prev.end) {
      throw new InputError(
        `${fileName}: tensors ${name(prev)} (data_offsets [${rel(prev.begin)}, ${rel(prev.end)}]) and ${name(t)} (data_offsets [${rel(t.begin)}, ${rel(t.end)}]) overlap; expected disjoint byte ranges`,
        { file: fileName, tensor: name(t) },
      );
    }
    if (t.begin > pos) {
      throw new InputError(
        `${fileName}: no tensor covers data bytes [${rel(pos)}, ${rel(t.begin)}) ${prev ? `between ${name(prev)} and ${name(t)}` : `before ${name(t)}`}; safetensors requires the data section to be covered without holes (corrupt file or wrong header length)`,
        { file: fileName, tensor: name(t) },
      );
    }
    prev = t;
    pos = t.end;
  }
  if (pos !== fileSize) {
    throw new InputError(
      `${fileName}: the data section after the ${headerLength}-byte header is ${fileSize - dataStart} bytes, but the tensors cover only ${rel(pos)}; ` +
        `${fileSize - pos} bytes at the end belong to no tensor (wrong header length in the first 8 bytes, or extra bytes appended); safetensors requires the data section to be covered exactly`,
      where,
    );
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
