import { InputError } from './errors';
import type { ModelSource } from './ports';

/** config.json files are a few KB; a cap keeps a hostile one from being read (and decoded) whole. */
export const MAX_TEXT_FILE_BYTES = 16 * 1024 * 1024;

/** Offset of the first byte that breaks UTF-8 (the decoder only says that one does). */
function firstInvalidUtf8(b: Uint8Array): number {
  for (let i = 0; i < b.length; ) {
    const c = b[i];
    const n = c < 0x80 ? 0 : c >= 0xc2 && c < 0xe0 ? 1 : c >= 0xe0 && c < 0xf0 ? 2 : c >= 0xf0 && c < 0xf5 ? 3 : -1;
    if (n < 0) return i;
    for (let k = 1; k <= n; k++) if (i + k >= b.length || (b[i + k] & 0xc0) !== 0x80) return i;
    i += n + 1;
  }
  return -1;
}

/**
 * A small text file of the model (config.json), size-capped and strictly UTF-8: a Latin-1 byte
 * would otherwise become U+FFFD and be copied into the bundle's config.
 */
export async function readModelTextFile(source: ModelSource, path: string, signal?: AbortSignal, maxBytes = MAX_TEXT_FILE_BYTES): Promise<string> {
  const src = await source.open(path);
  if (src.size > maxBytes) {
    throw new InputError(`${path} in ${source.label} is ${src.size} bytes; expected a small text file (at most ${maxBytes} bytes)`, { file: path });
  }
  const bytes = src.size === 0 ? new Uint8Array(0) : await src.read(0, src.size, signal);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const at = firstInvalidUtf8(bytes);
    throw new InputError(
      `${path} in ${source.label} is not valid UTF-8 (byte 0x${bytes[at]?.toString(16).padStart(2, '0') ?? '??'} at offset ${at}, perhaps Latin-1); save it as UTF-8`,
      { file: path },
    );
  }
}
