import { it, expect } from 'vitest';
import { createQwen2Cpu } from '../../src/eval/forward-cpu';
import { createQwen2WebGpu } from '../../src/eval/forward-webgpu';
import { createNodeGpuDevice } from '../../src/eval/gpu-device-node';
import { dimsFromConfig } from '../../src/eval/qwen2-config';
import { maxRelError } from '../../src/eval/perplexity';
import { makeTinyQwen2, tinyWeights } from '../helpers/tiny-qwen2';
it('dbg', async () => {
  const gpu = await createNodeGpuDevice();
  const tiny = makeTinyQwen2({ hidden: 64, intermediate: 96, layers: 2, heads: 4, kvHeads: 2, vocab: 100, tie: false, seed: 5, outliers: true });
  const dims = dimsFromConfig(tiny.config);
  const cpu = createQwen2Cpu(dims, tinyWeights(tiny));
  for (const o of [{ memoryBudgetBytes: 1 }, { maxBindingBytes: 1536 }, { memoryBudgetBytes: 1, maxBindingBytes: 1536 }]) {
    console.log('opts', o);
    const model = await createQwen2WebGpu(gpu.device, dims, tinyWeights(tiny), o);
    console.log('created');
    const x = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
    const z = await model.logits(x);
    console.log('err', maxRelError(z, cpu.logits(x)));
  }
}, 60000);
