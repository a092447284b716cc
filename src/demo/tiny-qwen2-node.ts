/** Writes a tiny random Qwen2 checkpoint into a folder (Node: the demo script and the tests). */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tinyQwen2Files, type TinyQwen2, type WriteTinyOptions } from './tiny-qwen2';

/** Writes the weights, `config.json` and `generation_config.json` into `dir`; returns the file names written. */
export async function writeTinyQwen2(dir: string, model: TinyQwen2, opts: WriteTinyOptions): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const files = await tinyQwen2Files(model, opts);
  for (const f of files) writeFileSync(path.join(dir, f.path), f.bytes);
  return files.map((f) => f.path);
}
