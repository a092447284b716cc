/**
 * A short measured calibration of each backend this worker can use: the real pipeline on two
 * small generated Qwen2 models (a warm-up first, so shader compilation is not counted), into a
 * sink that only counts bytes. src/core/estimate.ts turns the times into estimates.
 */
import { fitCost, CALIBRATION_SETTINGS, type BackendCalibration, type CalibrationSample } from '../core/estimate';
import { runPipeline } from '../core/pipeline/run';
import type { Backend, BundleSink, ModelSource } from '../core/ports';
import { parseSettings } from '../core/settings';
import { makeTinyQwen2, tinyQwen2Files, type TinyQwen2Options } from '../demo/tiny-qwen2';

const SMALL: TinyQwen2Options = { hidden: 64, intermediate: 128, layers: 1, heads: 4, kvHeads: 2, vocab: 64, tie: true, seed: 11 };
const MEDIUM: TinyQwen2Options = { hidden: 128, intermediate: 256, layers: 2, heads: 8, kvHeads: 2, vocab: 128, tie: true, seed: 12 };
/** A backend this slow on the small model is not timed on the medium one (its fit is per-parameter). */
const SLOW_MS = 3000;

async function memorySource(opts: TinyQwen2Options): Promise<{ source: ModelSource; parameters: number; tensors: number }> {
  const model = makeTinyQwen2(opts);
  const files = new Map((await tinyQwen2Files(model, { dtype: 'BF16' })).map((f) => [f.path, f.bytes]));
  let parameters = 0;
  for (const t of model.tensors.values()) parameters += t.data.length;
  const source: ModelSource = {
    label: 'calibration model',
    async listFiles() { return [...files.keys()]; },
    async open(path) {
      const bytes = files.get(path);
      if (!bytes) throw new Error(`calibration model: no ${path}`);
      return { name: path, size: bytes.length, read: async (o: number, n: number) => bytes.slice(o, o + n) };
    },
  };
  return { source, parameters, tensors: 7 * opts.layers + 1 };
}

function countingSink(): BundleSink {
  return {
    label: 'calibration (discarded)',
    async createFile() { return { async write() {}, async close() {} }; },
    async finalize() {},
    async abort() {},
  };
}

async function time(backend: Backend, m: Awaited<ReturnType<typeof memorySource>>, now: () => number, signal?: AbortSignal): Promise<CalibrationSample> {
  const t0 = now();
  await runPipeline({ source: m.source, sink: countingSink(), settings: parseSettings(CALIBRATION_SETTINGS), backend, target: { model: 'calibration' }, signal });
  return { tensors: m.tensors, parameters: m.parameters, ms: now() - t0 };
}

export async function calibrateBackend(
  backend: Backend,
  info: { backend: 'cpu' | 'webgpu'; description: string; software: boolean },
  now: () => number = () => performance.now(),
  signal?: AbortSignal,
): Promise<BackendCalibration> {
  const small = await memorySource(SMALL);
  const medium = await memorySource(MEDIUM);
  await time(backend, small, now, signal); // warm-up: pipelines compiled, buffers allocated
  const samples = [await time(backend, small, now, signal)];
  if (samples[0].ms < SLOW_MS) samples.push(await time(backend, medium, now, signal));
  return { ...info, ...fitCost(samples), samples };
}
