// A small random Qwen2 checkpoint (BF16, tied embeddings, LLM-like outliers) held in memory, for
// whole-pipeline parity tests: hidden 112 = 28·4 (full rotation uses H_28 ⊗ H_4), 7 heads of 16,
// 1 KV head. Made by the project's one generator (src/demo/tiny-qwen2.ts).
import { memoryModelSource, type MemoryModelSource } from './memory';
import { makeTinyQwen2, tinyQwen2Files } from '../../src/demo/tiny-qwen2';

export async function tinyCheckpoint(seed = 1): Promise<MemoryModelSource> {
  const model = makeTinyQwen2({ hidden: 112, intermediate: 96, layers: 2, heads: 7, kvHeads: 1, vocab: 160, tie: true, seed, outliers: true });
  const files = await tinyQwen2Files(model, { dtype: 'BF16' });
  return memoryModelSource(Object.fromEntries(files.map((f) => [f.path, f.bytes])), 'tiny-checkpoint');
}
