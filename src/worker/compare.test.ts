import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CpuBackend } from '../backends/cpu/cpu-backend';
import { runPipeline } from '../core/pipeline/run';
import { DEFAULT_SETTINGS, type QuantSettings } from '../core/settings';
import { makeTinyQwen2 } from '../demo/tiny-qwen2';
import { writeTinyQwen2 } from '../demo/tiny-qwen2-node';
import { memorySink } from '../../test/support/memory';
import { createNodeFsSource } from '../sources/node-fs-source-node';
import { compareBlockSizes } from './compare';

const dir = mkdtempSync(path.join(tmpdir(), 'quarot-compare-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('block-size comparison', () => {
  it('agrees with the pipeline: full/block rows equal the run\'s error, the plain row its baseline', async () => {
    const model = makeTinyQwen2({ hidden: 64, intermediate: 96, layers: 2, heads: 4, kvHeads: 2, vocab: 80, tie: true, seed: 11, outliers: true });
    await writeTinyQwen2(dir, model, { dtype: 'BF16' });
    const source = await createNodeFsSource(dir);
    const backend = new CpuBackend();
    const tensors = ['model.layers.1.self_attn.v_proj.weight', 'model.layers.0.self_attn.o_proj.weight', 'model.layers.0.mlp.down_proj.weight', 'model.embed_tokens.weight'];
    for (const settings of [{ ...DEFAULT_SETTINGS }, { ...DEFAULT_SETTINGS, rotation: 'block', blockSize: 32, scheme: 'per_tensor', clip: 'absmax', bits: 8 }] as QuantSettings[]) {
      const result = await runPipeline({ source, sink: memorySink(), settings, backend, target: { model: 'tiny' } });
      for (const name of tensors) {
        const report = result.reports.find((r) => r.name === name)!;
        const cmp = await compareBlockSizes(source, settings, backend, name);
        const label = settings.rotation === 'full' ? 'full (64)' : `block ${settings.blockSize}`;
        expect(cmp.rows.map((r) => r.label)).toEqual(['plain RTN', 'block 16', 'block 32', 'block 64', 'full (64)']);
        expect(cmp.skipped).toEqual(['block 128: does not divide hidden size 64', 'block 256: does not divide hidden size 64']);
        expect(cmp.rows.find((r) => r.label === label)!.relError).toBe(report.error!.relError);
        expect(cmp.rows[0].relError).toBe(report.baselineError!.relError);
      }
    }
    await source.close();
  });

  it('refuses norm vectors with a clear message', async () => {
    const source = await createNodeFsSource(dir);
    await expect(compareBlockSizes(source, { ...DEFAULT_SETTINGS }, new CpuBackend(), 'model.norm.weight')).rejects.toThrow(/norm vector/);
    await expect(compareBlockSizes(source, { ...DEFAULT_SETTINGS }, new CpuBackend(), 'nope')).rejects.toThrow(/no tensor named nope/);
    await source.close();
  });
});
