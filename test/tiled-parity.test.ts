// Tiled processing writes the same bytes as whole-tensor processing: every file of the bundle and
// every tensor report, with forced tiny tiles (2 KiB, so every matrix is cut into row tiles and the
// column-rotated o_proj/down_proj/v_proj into column slabs), with and without a spool, on the CPU
// backend, across schemes, clips, rotations, bit widths, embeddings quantized or not, tied and
// untied heads.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CpuBackend } from '../src/backends/cpu/cpu-backend';
import { runPipeline, type PipelineResult } from '../src/core/pipeline/run';
import { memorySpool } from '../src/core/pipeline/tiled';
import { fileSpool } from '../src/sinks/file-spool-node';
import type { SpoolFactory } from '../src/core/ports';
import { parseSettings, type QuantSettings } from '../src/core/settings';
import { makeTinyQwen2, tinyQwen2Files } from '../src/demo/tiny-qwen2';
import { FIXTURE_DIR, HAVE_FIXTURE, readFolder } from './support/bundle';
import { memoryModelSource, memorySink } from './support/memory';

type Files = Record<string, Uint8Array>;

const spoolDir = mkdtempSync(join(tmpdir(), 'quarot-tiled-'));
afterAll(() => rmSync(spoolDir, { recursive: true, force: true }));

async function run(files: Files, settings: Partial<Record<keyof QuantSettings, unknown>>, tileBytes: number, spool?: SpoolFactory) {
  const source = memoryModelSource(files, 'parity');
  const sink = memorySink();
  const result = await runPipeline({
    source, sink, settings: parseSettings(settings), backend: new CpuBackend(), target: { model: 'parity' }, tileBytes, spool,
  });
  // The largest read of tensor data (past each file's header): bounded by the tile when tiled.
  let largestDataRead = 0;
  for (const [path, src] of source.opened) {
    const bytes = files[path];
    if (!path.endsWith('.safetensors')) continue;
    const dataStart = 8 + Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    for (const [offset, length] of src.reads) if (offset >= dataStart) largestDataRead = Math.max(largestDataRead, length);
  }
  return { result, files: sink.files, largestDataRead };
}

const strip = (r: PipelineResult) => ({ ...r, elapsedMs: 0 });

async function expectSameBytes(files: Files, settings: Partial<Record<keyof QuantSettings, unknown>>, tileBytes: number, largestTensorBytes: number, largestTiledRead = tileBytes) {
  const whole = await run(files, settings, Infinity);
  for (const spool of [undefined, memorySpool, fileSpool(spoolDir)]) {
    const tiled = await run(files, settings, tileBytes, spool);
    expect(Object.keys(tiled.files).sort()).toEqual(Object.keys(whole.files).sort());
    for (const name of Object.keys(whole.files)) {
      expect(Buffer.compare(Buffer.from(tiled.files[name]), Buffer.from(whole.files[name])), `${name} (spool ${spool === memorySpool ? 'memory' : spool ? 'file' : 'none'})`).toBe(0);
    }
    expect(strip(tiled.result)).toEqual(strip(whole.result));
    // Whole: the largest tensor is read in one piece; tiled: no read above one tile of source bytes.
    expect(whole.largestDataRead).toBe(largestTensorBytes);
    expect(tiled.largestDataRead).toBeLessThanOrEqual(largestTiledRead);
    expect(readdirSync(spoolDir)).toEqual([]); // every temp spool removed
  }
  return whole;
}

const tiny = async (tie: boolean): Promise<Files> => {
  const model = makeTinyQwen2({ hidden: 112, intermediate: 96, layers: 2, heads: 7, kvHeads: 1, vocab: 160, tie, seed: 3, outliers: true });
  return Object.fromEntries((await tinyQwen2Files(model, { dtype: 'BF16' })).map((f) => [f.path, f.bytes]));
};

// The embedding, 160 × 112 BF16.
const TINY_EMBEDDING_BYTES = 160 * 112 * 2;

// [name, settings, tile bytes, largest source read allowed when tiled (default: the tile)]
const CASES: [string, Partial<Record<keyof QuantSettings, unknown>>, number, number?][] = [
  ['defaults (W4 sp/mse, full rotation, embeddings quantized)', {}, 2048],
  ['W4 per_tensor/absmax, embeddings not quantized', { scheme: 'per_tensor', clip: 'absmax', quantizeEmbeddings: false }, 2048],
  ['W4 per_tensor/mse', { scheme: 'per_tensor', clip: 'mse' }, 2048],
  ['W8 sp/absmax', { bits: 8, scheme: 'sp', clip: 'absmax' }, 2048],
  ['W4 sp/mse, no rotation', { rotation: 'none' }, 2048],
  ['W4 sp/mse, block rotation 16 (aligned row tiles for the column rotations)', { rotation: 'block', blockSize: 16 }, 8192],
  ['bits 16, F32 output, full rotation', { bits: 16, dtype: 'f32' }, 2048],
  ['learned codebook (projections stay whole; the embedding is tiled)', { codebook: 'learned' }, 2048, 112 * 112 * 2],
];

describe('tiled processing: same bytes as whole tensors (CPU)', () => {
  for (const tie of [true, false]) {
    it.each(CASES)(`tiny checkpoint, ${tie ? 'tied' : 'untied'} head: %s`, async (_name, settings, tileBytes, largestTiledRead) => {
      const whole = await expectSameBytes(await tiny(tie), settings, tileBytes, TINY_EMBEDDING_BYTES, largestTiledRead);
      expect(Object.keys(whole.files).filter((f) => f.endsWith('.safetensors'))).toEqual(['model.safetensors']);
      expect(whole.result.reports.filter((r) => r.kind === 'lm_head').length).toBe(whole.result.plan.writesLmHead ? 1 : 0);
    });
  }

  it.skipIf(!HAVE_FIXTURE)('tinystories fixture (F32), defaults and per_tensor/absmax, 2 KiB tiles', async () => {
    const files = readFolder(FIXTURE_DIR);
    for (const settings of [{}, { scheme: 'per_tensor', clip: 'absmax' }]) {
      const whole = await expectSameBytes(files, settings, 2048, 512 * 64 * 4);
      expect(whole.result.plan.quantizedCount).toBe(5 * 7 + 1);
    }
  });

  it('refuses a tile size that is not positive', async () => {
    await expect(run(await tiny(true), {}, 0)).rejects.toThrow('tile size must be positive, got 0 bytes');
  });
});
