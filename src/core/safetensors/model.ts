import { clipForMessage, InputError, throwIfAborted } from '../errors';
import { readSafetensorsHeader } from './header';
import type { SafetensorsHeader, TensorInfo } from './types';
import type { ByteSource, ModelSource } from '../ports';

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

/** An index is a few tens of KB even for huge models; a cap keeps a bogus one from eating memory. */
const MAX_INDEX_BYTES = 64 * 1024 * 1024;

export interface SafetensorsModel {
  /** Every safetensors file of the model, by its relative path, with its parsed header. */
  files: Map<string, { source: ByteSource; header: SafetensorsHeader }>;
  /** Every tensor by name: the file holding it and where. */
  tensors: Map<string, { file: string; info: TensorInfo }>;
  /** Sum of all tensors' data bytes (what reading every tensor once transfers). */
  totalBytes: number;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v;
}

async function readIndex(source: ModelSource, signal?: AbortSignal): Promise<Map<string, string>> {
  const where = { file: INDEX_FILE };
  const src = await source.open(INDEX_FILE);
  if (src.size > MAX_INDEX_BYTES) {
    throw new InputError(`${INDEX_FILE} in ${source.label} is ${src.size} bytes; expected a small JSON file (at most ${MAX_INDEX_BYTES} bytes)`, where);
  }
  const bytes = src.size === 0 ? new Uint8Array(0) : await src.read(0, src.size, signal);
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    throw new InputError(
      `${INDEX_FILE} in ${source.label} is not valid UTF-8 JSON (${err instanceof Error ? err.message : String(err)}); expected a JSON object with a weight_map`,
      where,
    );
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new InputError(`${INDEX_FILE} in ${source.label} must be a JSON object with a weight_map; found ${describe(parsed)}`, where);
  }
  const wm = (parsed as Record<string, unknown>).weight_map;
  if (typeof wm !== 'object' || wm === null || Array.isArray(wm)) {
    throw new InputError(
      `${INDEX_FILE} in ${source.label} has no weight_map object (found ${wm === undefined ? 'nothing' : describe(wm)}); expected {"weight_map": {tensor: shard file}}`,
      where,
    );
  }
  const map = new Map<string, string>();
  for (const [tensor, shard] of Object.entries(wm as Record<string, unknown>)) {
    if (typeof shard !== 'string' || shard === '') {
      throw new InputError(
        `${INDEX_FILE} in ${source.label}: weight_map entry for tensor ${clipForMessage(tensor)} must be a shard file name; found ${typeof shard === 'string' || typeof shard === 'number' ? JSON.stringify(shard) : describe(shard)}`,
        { file: INDEX_FILE, tensor: clipForMessage(tensor) },
      );
    }
    map.set(tensor, shard);
  }
  if (map.size === 0) {
    throw new InputError(`${INDEX_FILE} in ${source.label} has an empty weight_map; expected at least one tensor`, where);
  }
  return map;
}

/**
 * Open a model's safetensors files (one `model.safetensors`, or the shards named by
 * `model.safetensors.index.json`), reading only their headers, and cross-check them.
 */
export async function openSafetensorsModel(source: ModelSource, signal?: AbortSignal): Promise<SafetensorsModel> {
  throwIfAborted(signal);
  const listed = await source.listFiles();
  const present = new Set(listed);
  const files = new Map<string, { source: ByteSource; header: SafetensorsHeader }>();
  const tensors = new Map<string, { file: string; info: TensorInfo }>();
  let totalBytes = 0;

  const openFile = async (path: string) => {
    throwIfAborted(signal);
    const src = await source.open(path);
    const header = await readSafetensorsHeader(src, signal);
    // Headers name the ByteSource's file; keep the model-relative path the user knows.
    files.set(path, { source: src, header: header.fileName === path ? header : { ...header, fileName: path } });
    return header;
  };

  if (present.has(INDEX_FILE)) {
    const weightMap = await readIndex(source, signal);
    const shards = [...new Set(weightMap.values())];
    const missing = shards.filter((s) => !present.has(s));
    if (missing.length > 0) {
      throw new InputError(
        `${INDEX_FILE} names shard files missing from ${source.label}: ${clipForMessage(missing.slice(0, 5).join(', '), 400)}${missing.length > 5 ? ` and ${missing.length - 5} more` : ''}`,
        { file: clipForMessage(missing[0]) },
      );
    }
    for (const shard of shards) {
      const header = await openFile(shard);
      for (const info of header.tensors) {
        const mapped = weightMap.get(info.name);
        const name = clipForMessage(info.name);
        const where = { file: shard, tensor: name };
        if (tensors.has(info.name)) {
          throw new InputError(`tensor ${name} appears twice: in ${tensors.get(info.name)!.file} and in ${shard}; expected it in one file`, where);
        }
        if (mapped === undefined) {
          throw new InputError(`tensor ${name} is in shard ${shard} but not in the weight_map of ${INDEX_FILE}`, where);
        }
        if (mapped !== shard) {
          throw new InputError(`tensor ${name} is in shard ${shard} but ${INDEX_FILE} maps it to ${mapped}`, where);
        }
        tensors.set(info.name, { file: shard, info });
        totalBytes += info.end - info.begin;
      }
    }
    for (const [name, shard] of weightMap) {
      if (!tensors.has(name)) {
        throw new InputError(`tensor ${clipForMessage(name)} is listed in ${INDEX_FILE} under shard ${clipForMessage(shard)}, but ${clipForMessage(shard)} does not contain it`, {
          file: clipForMessage(shard),
          tensor: clipForMessage(name),
        });
      }
    }
  } else if (present.has(SINGLE_FILE)) {
    const header = await openFile(SINGLE_FILE);
    for (const info of header.tensors) {
      tensors.set(info.name, { file: SINGLE_FILE, info });
      totalBytes += info.end - info.begin;
    }
  } else {
    const others = listed.filter((f) => f.endsWith('.safetensors'));
    const hint = others.length > 0 ? ` (found ${others.join(', ')} but no index naming them)` : '';
    throw new InputError(`no ${SINGLE_FILE} or ${INDEX_FILE} in ${source.label}${hint}`, {});
  }

  return { files, tensors, totalBytes };
}
