/**
 * The WebGPU forward pass against the CPU oracle: logits max relative error (max |Δ| over the
 * largest |logit|) < 1e-3 on random tiny models (resident, tiled and streamed weights, chunked
 * input, KV-cache generation) and on the real tiny model.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createQwen2Cpu } from '../../src/eval/forward-cpu';
import { createQwen2WebGpu } from '../../src/eval/forward-webgpu';
import { createNodeGpuDevice } from '../../src/eval/gpu-device-node';
import type { EvalGpu } from '../../src/eval/gpu-device';
import { dimsFromConfig } from '../../src/core/qwen2/config';
import { greedy, greedyAsync, maxRelError } from '../../src/eval/perplexity';
import { FIXTURE_DIR, HAS_FIXTURE, fixtureJson, fixtureSuite } from '../support/fixture';
import { loadSafetensorsWeights, makeTinyQwen2, tinyWeights } from '../support/tiny-qwen2';

let gpu: EvalGpu | undefined;
let gpuError = '';
beforeAll(async () => {
  try {
    gpu = await createNodeGpuDevice();
  } catch (e) {
    gpuError = (e as Error).message;
  }
});
afterAll(() => gpu?.device.destroy());

function ids(n: number, V: number, seed: number): number[] {
  let s = seed;
  return Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) >>> 0;
    return s % V;
  });
}

describe('WebGPU forward vs CPU forward', () => {
  it('has a device (EGL_PLATFORM=surfaceless, npm webgpu)', () => {
    expect(gpuError).toBe('');
    console.log(`adapter: ${gpu!.adapterName}`);
  });

  const tiny = makeTinyQwen2({ hidden: 64, intermediate: 96, layers: 2, heads: 4, kvHeads: 2, vocab: 100, tie: false, seed: 5, outliers: true });
  const dims = dimsFromConfig(tiny.config);
  const cpu = createQwen2Cpu(dims, tinyWeights(tiny));

  it('random tiny model (untied, biases, outliers): all-position logits < 1e-3', async () => {
    const model = await createQwen2WebGpu(gpu!.device, dims, tinyWeights(tiny));
    const x = ids(150, 100, 1);
    const err = maxRelError(await model.logits(x), cpu.logits(x));
    console.log(`tiny random: max rel err ${err.toExponential(2)}`);
    expect(err).toBeLessThan(1e-3);
    expect(model.streaming).toBe(false);
    model.destroy();
  });

  it('tiled matrices, streamed layers and chunked input give the same logits', async () => {
    // 1 KiB bindings: every matrix in several row tiles, 4-row input chunks through the cache.
    const model = await createQwen2WebGpu(gpu!.device, dims, tinyWeights(tiny), { memoryBudgetBytes: 1, maxBindingBytes: 1536 });
    expect(model.streaming).toBe(true);
    const x = ids(21, 100, 2);
    const z = await model.logits(x);
    expect(z.length).toBe(21 * 100);
    expect(maxRelError(z, cpu.logits(x))).toBeLessThan(1e-3);
    model.destroy();
  });

  it('log-probs on the GPU; prefill/step with the KV cache equal full forwards; greedy matches', async () => {
    const model = await createQwen2WebGpu(gpu!.device, dims, tinyWeights(tiny));
    const x = ids(40, 100, 3);
    const lp = await model.logProbs(x);
    const z = cpu.logits(x);
    let maxErr = 0;
    for (let t = 0; t < 40; t++) {
      let m = -Infinity;
      for (let i = 0; i < 100; i++) m = Math.max(m, z[t * 100 + i]);
      let s = 0;
      for (let i = 0; i < 100; i++) s += Math.exp(z[t * 100 + i] - m);
      for (let i = 0; i < 100; i++) maxErr = Math.max(maxErr, Math.abs(lp[t * 100 + i] - (z[t * 100 + i] - m - Math.log(s))));
    }
    expect(maxErr).toBeLessThan(1e-3);
    const last = await model.prefill(x.slice(0, 10));
    expect(maxRelError(last, cpu.logits(x.slice(0, 10)).subarray(9 * 100))).toBeLessThan(1e-3);
    const s1 = await model.step(x[10]);
    expect(maxRelError(s1, cpu.logits(x.slice(0, 11)).subarray(10 * 100))).toBeLessThan(1e-3);
    expect(model.position).toBe(11);
    expect(await greedyAsync(model, [1, 2, 3], 15)).toEqual(greedy(cpu, [1, 2, 3], 15));
    model.destroy();
  });
});

describe.skipIf(!HAS_FIXTURE)(fixtureSuite('WebGPU forward on tinystories-260k'), () => {
  it('64 tokens of eval text: logits max relative error < 1e-3', async () => {
    const dims = dimsFromConfig(fixtureJson('config.json'));
    const w = await loadSafetensorsWeights(FIXTURE_DIR);
    const src = { get: (n: string) => w.get(n) };
    const cpu = createQwen2Cpu(dims, src);
    const model = await createQwen2WebGpu(gpu!.device, dims, src);
    const x = fixtureJson<{ ids: number[] }>('eval.tokens.json').ids.slice(0, 64);
    const err = maxRelError(await model.logits(x), cpu.logits(x));
    console.log(`fixture: max rel err ${err.toExponential(2)}`);
    expect(err).toBeLessThan(1e-3);
    model.destroy();
  });
});
