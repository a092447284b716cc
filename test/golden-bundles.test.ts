// RTN bundles must not change byte for byte across refactors: model.safetensors hashes for five
// settings on the real fixture, recorded from the CLI before the pipeline was split into stages.
import { createHash } from 'node:crypto';
import { CpuBackend } from '../src/backends/cpu/cpu-backend';
import { runPipeline } from '../src/core/pipeline/run';
import { parseSettings } from '../src/core/settings';
import { memoryModelSource } from './support/memory';
import { describe, expect, test } from './support/fixtures';

const GOLDEN: [string, Record<string, unknown>, string][] = [
  ['defaults (W4 sp/mse full, embeddings quantized)', {}, '345e1d5c3d75e43247fe74690d18cfb8a0f34c390d5e78d43d6a36b2d83fe806'],
  ['W4 per_tensor/absmax full', { scheme: 'per_tensor', clip: 'absmax' }, '6ac9ddf57564ebb3815ad426b754c4e140cff3d0cea24f6c2306c8ff40495729'],
  ['W8 sp/absmax block 16', { bits: 8, rotation: 'block', blockSize: 16, clip: 'absmax' }, '0469011efce76b399c9a3ec26b26b937bc9db5219c311fda003a225a4ddb0ad6'],
  ['W4 rotation none, embeddings kept', { rotation: 'none', quantizeEmbeddings: false }, 'd269ac80a73d6f6b3a4455026daf8d0fd4e03ed603a1c47d96b6b7779ec54b1c'],
  ['bits 16 full', { bits: 16 }, 'cb6165a59cbd4ded8a836db6197b4c71012dc79f0fbd2426f991860797e75645'],
];

describe('golden RTN bundles of tinystories-260k (CPU backend)', () => {
  for (const [name, settings, sha] of GOLDEN) {
    test(name, async ({ fixtureFiles, sink }) => {
      await runPipeline({
        source: memoryModelSource(fixtureFiles, 'tinystories-260k'), sink, backend: new CpuBackend(),
        settings: parseSettings(settings), target: { model: 'tinystories-260k' },
      });
      expect(createHash('sha256').update(sink.files['model.safetensors']).digest('hex')).toBe(sha);
    });
  }
});
