// Tiled processing on the WebGPU backend (Dawn): forced 2 KiB tiles (row tiles, column slabs for
// the column-rotated projections) give the CPU backend's whole-tensor bundle, byte for byte.
import { describe, expect, it } from 'vitest';
import { CpuBackend } from '../../src/backends/cpu/cpu-backend';
import type { Backend, SpoolFactory } from '../../src/core/ports';
import { runPipeline } from '../../src/core/pipeline/run';
import { memorySpool } from '../../src/core/pipeline/tiled';
import { DEFAULT_SETTINGS, type QuantSettings } from '../../src/core/settings';
import { makeTinyQwen2, tinyQwen2Files } from '../../src/demo/tiny-qwen2';
import { memoryModelSource, memorySink } from '../support/memory';
import { firstBitDiff, gpuBackend, gpuEnv } from '../support/gpu';

const env = await gpuEnv();
if (!env.adapter) console.warn(`WebGPU tiled parity tests skipped: ${env.reason}`);

async function checkpoint(tie: boolean): Promise<Record<string, Uint8Array>> {
  const model = makeTinyQwen2({ hidden: 112, intermediate: 96, layers: 2, heads: 7, kvHeads: 1, vocab: 160, tie, seed: 5, outliers: true });
  return Object.fromEntries((await tinyQwen2Files(model, { dtype: 'BF16' })).map((f) => [f.path, f.bytes]));
}

async function bundle(files: Record<string, Uint8Array>, backend: Backend, settings: Partial<QuantSettings>, tileBytes: number, spool?: SpoolFactory) {
  const sink = memorySink();
  const result = await runPipeline({
    source: memoryModelSource(files, 'tiled-gpu'), sink, backend, settings: { ...DEFAULT_SETTINGS, ...settings },
    target: { model: 'test/tiled-gpu' }, tileBytes, spool,
  });
  expect(sink.finalized).toBe(true);
  return { files: sink.files, reports: result.reports };
}

const CASES: [string, boolean, Partial<QuantSettings>, SpoolFactory | undefined][] = [
  ['tied, defaults (W4 sp/mse full, embeddings quantized), re-read from the source', true, {}, undefined],
  ['untied, W4 per_tensor/absmax, embeddings not quantized, memory spool', false, { scheme: 'per_tensor', clip: 'absmax', quantizeEmbeddings: false }, memorySpool],
  ['untied, W8 per_tensor/mse block 16, memory spool', false, { bits: 8, scheme: 'per_tensor', clip: 'mse', rotation: 'block', blockSize: 16 }, memorySpool],
];

describe.skipIf(!env.adapter)('tiled processing on WebGPU = whole tensors on the CPU, byte for byte', () => {
  it.each(CASES)('%s', async (_name, tie, settings, spool) => {
    const files = await checkpoint(tie);
    const want = await bundle(files, new CpuBackend(), settings, Infinity);
    const gpu = await gpuBackend(env);
    try {
      const got = await bundle(files, gpu, settings, 2048, spool);
      expect(Object.keys(got.files).sort()).toEqual(Object.keys(want.files).sort());
      for (const path of Object.keys(want.files)) {
        const diff = firstBitDiff(got.files[path], want.files[path]);
        expect(diff, `${path}: ${diff}`).toBeNull();
      }
      expect(got.reports).toEqual(want.reports);
      expect(got.reports.filter((r) => r.kind === 'lm_head').length).toBe(1);
    } finally {
      await gpu.dispose();
    }
  });
});
