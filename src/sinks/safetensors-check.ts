import { InputError } from '../core/errors';

/**
 * Minimal check that written bytes start like a safetensors file: 8-byte little-endian header
 * length that fits the file, then a JSON object. Catches truncated or garbled output before
 * the bundle is marked complete; full validation lives in core/safetensors.
 */
export function checkSafetensorsPrefix(name: string, fileSize: number, prefix8: Uint8Array): number {
  if (fileSize < 8 || prefix8.length < 8) throw new InputError(`${name}: written file is ${fileSize} bytes, too short for a safetensors header`, { file: name });
  const dv = new DataView(prefix8.buffer, prefix8.byteOffset, 8);
  const len = dv.getUint32(0, true) + dv.getUint32(4, true) * 2 ** 32;
  if (len < 2 || 8 + len > fileSize) throw new InputError(`${name}: written header length ${len} does not fit the ${fileSize}-byte file`, { file: name });
  return len;
}

export function checkSafetensorsHeaderJson(name: string, json: Uint8Array): void {
  let obj: unknown;
  try {
    obj = JSON.parse(new TextDecoder().decode(json));
  } catch {
    throw new InputError(`${name}: written safetensors header is not valid JSON`, { file: name });
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new InputError(`${name}: written safetensors header is not a JSON object`, { file: name });
}

/** Both checks through a reader of byte ranges. */
export async function checkSafetensorsFile(name: string, size: number, read: (offset: number, length: number) => Promise<Uint8Array>): Promise<void> {
  const len = checkSafetensorsPrefix(name, size, await read(0, 8));
  checkSafetensorsHeaderJson(name, await read(8, len));
}
