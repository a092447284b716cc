/** Test helpers shared by the pipeline/bundle tests: fixture access, running the pipeline in memory, loading weights. */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CpuBackend } from '../../src/backends/cpu/cpu-backend';
import type { Backend } from '../../src/core/ports';
import { runPipeline, type PipelineResult } from '../../src/core/pipeline/run';
import { parseSettings, type QuantSettings } from '../../src/core/settings';
import { loadModelWeights } from './load-weights';
import { memoryModelSource, memorySink } from './memory';
import type { WeightSource } from '../../src/eval/forward-cpu';
import { makeTinyQwen2, tinyQwen2Files, type TinyQwen2Options } from '../../src/demo/tiny-qwen2';
import type { Dtype } from '../../src/core/safetensors/types';

export { FIXTURE_DIR, FIXTURE_SKIP_REASON, HAS_FIXTURE as HAVE_FIXTURE } from './fixture';

/** Every regular file of a folder, as bytes (small test models only). */
export function readFolder(dir: string): Record<string, Uint8Array> {
  const out: Record<string, Uint8Array> = {};
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    if (statSync(p).isFile()) out[f] = new Uint8Array(readFileSync(p));
  }
  return out;
}

export interface MemoryRun {
  result: PipelineResult;
  files: Record<string, Uint8Array>;
}

/** Run the whole pipeline from in-memory files into an in-memory sink. */
export async function runInMemory(
  files: Record<string, Uint8Array>,
  settings: Partial<Record<keyof QuantSettings, unknown>>,
  opts: { backend?: Backend; maxShardBytes?: number; model?: string } = {},
): Promise<MemoryRun> {
  const sink = memorySink();
  const result = await runPipeline({
    source: memoryModelSource(files, opts.model ?? 'test-model'),
    sink,
    settings: parseSettings(settings),
    backend: opts.backend ?? new CpuBackend(),
    target: { model: opts.model ?? 'test-model' },
    maxShardBytes: opts.maxShardBytes,
  });
  return { result, files: sink.files };
}

/** All tensors of a (possibly sharded) safetensors model held in memory, decoded to f32. */
export function loadWeights(files: Record<string, Uint8Array>): Promise<Map<string, Float32Array>> {
  return loadModelWeights(memoryModelSource(files));
}

export function weightSource(m: Map<string, Float32Array>): WeightSource {
  return { get: (name) => m.get(name) };
}

/** Relative RMS difference of two equally long vectors. */
export function relRms(a: Float32Array, b: Float32Array): number {
  let d = 0;
  let r = 0;
  for (let i = 0; i < a.length; i++) { d += (a[i] - b[i]) ** 2; r += a[i] ** 2; }
  return Math.sqrt(d / r);
}

/** A generated random Qwen2 as in-memory HF files (one safetensors file unless `shards`). */
export async function tinyModelFiles(opts: TinyQwen2Options, dtype: Dtype = 'F32', shards = 1): Promise<Record<string, Uint8Array>> {
  const files = await tinyQwen2Files(makeTinyQwen2(opts), { dtype, shards });
  return Object.fromEntries(files.map((f) => [f.path, f.bytes]));
}
