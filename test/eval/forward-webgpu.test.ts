/**
 * The WebGPU forward pass against the CPU oracle: logits max relative error (max |Δ| over the
 * largest |logit|) < 1e-3 on random tiny models (resident, tiled and streamed weights, chunked
 * input, KV-cache generation) and on the real tiny model; layer by layer, the hooks' linear
 * inputs agree with the CPU's (< 1e-4 relative); a layer runs with weights straight from the
 * quantization backend on the same runtime; a lost device surfaces as GpuUnavailableError.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWebGpuBackend } from '../../src/backends/webgpu/webgpu-backend';
import { dimsFromConfig } from '../../src/core/qwen2/config';
import { LINEAR_INPUTS, projectionName, projectionShape, type LinearInput } from '../../src/core/qwen2/tensors';
import type { Activation, LinearHooks, Qwen2Forward } from '../../src/eval/forward';
import { createQwen2Cpu } from '../../src/eval/forward-cpu';
import { createQwen2WebGpu, type GpuActivation } from '../../src/eval/forward-webgpu';
import { greedy, maxRelError } from '../../src/eval/perplexity';
import { GpuUnavailableError } from '../../src/gpu/errors';
import { createNodeGpuRuntime } from '../../src/gpu/node';
import type { GpuRuntime } from '../../src/gpu/runtime';
import { FIXTURE_DIR, HAS_FIXTURE, fixtureJson, fixtureSuite } from '../support/fixture';
import { loseDevice } from '../support/gpu';
import { loadSafetensorsWeights, makeTinyQwen2, tinyWeights } from '../support/tiny-qwen2';

let gpu: GpuRuntime | undefined;
let gpuError = '';
beforeAll(async () => {
  try {
    gpu = await createNodeGpuRuntime();
  } catch (e) {
    gpuError = (e as Error).message;
  }
});
afterAll(() => gpu?.destroy());

function ids(n: number, V: number, seed: number): number[] {
  let s = seed;
  return Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) >>> 0;
    return s % V;
  });
}

/** embed → runLayer × L → head, collecting every hook's input as host arrays. */
async function layerByLayer<A extends Activation, W>(m: Qwen2Forward<A, W>, x: number[]) {
  const seen: Record<string, Float32Array> = {};
  const hooks: LinearHooks<A> = {};
  for (const input of LINEAR_INPUTS) hooks[input] = async (a, at) => void (seen[`${at.layer}.${at.input}`] = await a.read());
  let h = await m.embed(x);
  for (let li = 0; li < m.dims.layers; li++) {
    const next = await m.runLayer(li, h, { hooks });
    m.release(h);
    h = next;
  }
  const z = await m.head(h);
  const last = await h.read();
  m.release(h);
  return { z, seen, last };
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
    const model = await createQwen2WebGpu(gpu!, dims, tinyWeights(tiny));
    const x = ids(150, 100, 1);
    const err = maxRelError(await model.logits(x), await cpu.logits(x));
    console.log(`tiny random: max rel err ${err.toExponential(2)}`);
    expect(err).toBeLessThan(1e-3);
    expect(model.streaming).toBe(false);
    model.dispose();
  });

  it('tiled matrices, streamed layers and chunked input give the same logits', async () => {
    // 1.5 KiB bindings: every matrix in several row tiles, 4-row input chunks through the cache.
    const model = await createQwen2WebGpu(gpu!, dims, tinyWeights(tiny), { memoryBudgetBytes: 1, maxBindingBytes: 1536 });
    expect(model.streaming).toBe(true);
    const x = ids(21, 100, 2);
    const z = await model.logits(x);
    expect(z.length).toBe(21 * 100);
    expect(maxRelError(z, await cpu.logits(x))).toBeLessThan(1e-3);
    // Layer by layer through the streamed slot too (4 rows: within one chunk).
    const lb = await layerByLayer(model, x.slice(0, 4));
    expect(maxRelError(lb.z, await cpu.logits(x.slice(0, 4)))).toBeLessThan(1e-3);
    await expect(model.embed(x)).rejects.toThrow(/exceed 4, the most/);
    model.dispose();
  });

  it('log-probs on the GPU; prefill/step with the KV cache equal full forwards; greedy matches', async () => {
    const model = await createQwen2WebGpu(gpu!, dims, tinyWeights(tiny));
    const x = ids(40, 100, 3);
    const lp = await model.logProbs(x);
    const z = await cpu.logits(x);
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
    expect(maxRelError(last, (await cpu.logits(x.slice(0, 10))).subarray(9 * 100))).toBeLessThan(1e-3);
    const s1 = await model.step(x[10]);
    expect(maxRelError(s1, (await cpu.logits(x.slice(0, 11))).subarray(10 * 100))).toBeLessThan(1e-3);
    expect(model.position).toBe(11);
    expect(await greedy(model, [1, 2, 3], 15)).toEqual(await greedy(cpu, [1, 2, 3], 15));
    model.dispose();
  });

  it('layer by layer: equals the whole-model logits, and every hook input agrees with the CPU (< 1e-4 relative)', async () => {
    const model = await createQwen2WebGpu(gpu!, dims, tinyWeights(tiny));
    const x = ids(33, 100, 4);
    const g = await layerByLayer(model, x);
    const c = await layerByLayer(cpu, x);
    expect(maxRelError(g.z, await model.logits(x))).toBeLessThan(1e-6);
    expect(Object.keys(g.seen).sort()).toEqual(Object.keys(c.seen).sort());
    expect(Object.keys(g.seen).length).toBe(dims.layers * LINEAR_INPUTS.length);
    const errs: Record<string, number> = {};
    for (const k of Object.keys(c.seen)) {
      expect(g.seen[k].length).toBe(c.seen[k].length);
      errs[k] = maxRelError(g.seen[k], c.seen[k]);
      expect(errs[k], k).toBeLessThan(1e-4);
    }
    console.log(`hook inputs, max rel err GPU vs CPU: ${Math.max(...Object.values(errs)).toExponential(2)}`);
    expect(maxRelError(g.last, c.last)).toBeLessThan(1e-4);
    // head's options: the last row only, log-softmax on the GPU.
    const h = await model.embed(x.slice(0, 5));
    let cur = h;
    for (let li = 0; li < dims.layers; li++) cur = await model.runLayer(li, cur);
    const lastLp = await model.head(cur, { lastOnly: true, logSoftmax: true });
    expect(lastLp.length).toBe(100);
    expect(maxRelError(lastLp, (await model.logProbs(x.slice(0, 5))).subarray(4 * 100))).toBeLessThan(1e-6);
    model.dispose();
  });

  it('runs a layer with weights from the quantization backend on the same runtime, no readback', async () => {
    const model = await createQwen2WebGpu(gpu!, dims, tinyWeights(tiny));
    const backend = await createWebGpuBackend({ runtime: gpu!, maxTileBytes: 4096 });
    const w = tinyWeights(tiny);
    const [out, inDim] = projectionShape(dims, 'down_proj');
    // A different down_proj of layer 1 on the backend (tiled in 4 KiB tiles), used by the GPU pass as it is.
    const sub = w.get(projectionName(1, 'down_proj'))!.map((v) => v * 0.5);
    const mat = await backend.upload(new Uint8Array(sub.buffer.slice(0)), 'F32', out, inDim);
    const x = ids(12, 100, 6);
    const h0 = await model.embed(x);
    const h1 = await model.runLayer(0, h0);
    const gotOwn = await (await model.runLayer(1, h1)).read();
    const gotSub = await (await model.runLayer(1, h1, { weights: { down_proj: backend.tiledMatrixOf(mat) } })).read();
    const c1 = await cpu.runLayer(1, await cpu.runLayer(0, await cpu.embed(x)), { weights: { down_proj: sub } });
    expect(maxRelError(gotSub, c1.data)).toBeLessThan(1e-4);
    expect(maxRelError(gotSub, gotOwn)).toBeGreaterThan(1e-3);
    // Host arrays work too, and wrong shapes are named.
    const gotHost = await (await model.runLayer(1, h1, { weights: { down_proj: sub } })).read();
    expect(maxRelError(gotHost, gotSub)).toBeLessThan(1e-6);
    await expect(model.runLayer(1, h1, { weights: { o_proj: sub } })).rejects.toThrow(/substituted model\.layers\.1\.self_attn\.o_proj/);
    backend.release(mat);
    await backend.dispose();
    // The backend did not own the runtime: the device is still usable.
    expect(gpu!.lost).toBeNull();
    expect(maxRelError(await model.logits(x), await cpu.logits(x))).toBeLessThan(1e-3);
    model.dispose();
  });

  it('hook activations stay on the device and can be read on demand', async () => {
    const model = await createQwen2WebGpu(gpu!, dims, tinyWeights(tiny));
    const h = await model.embed([1, 2, 3]);
    const widths: Partial<Record<LinearInput, number>> = {};
    let buffer: GPUBuffer | undefined;
    const next = await model.runLayer(0, h, {
      hooks: {
        mlp_mid: (a: GpuActivation) => {
          widths.mlp_mid = a.cols;
          buffer = a.buffer;
          expect(a.rows).toBe(3);
        },
      },
    });
    expect(widths.mlp_mid).toBe(dims.intermediate);
    expect(buffer!.size).toBeGreaterThanOrEqual(3 * dims.intermediate * 4);
    expect(next.buffer).not.toBe(h.buffer);
    model.release(h);
    model.release(next);
    model.dispose();
  });
});

describe('WebGPU forward: a lost device', () => {
  it('surfaces as GpuUnavailableError (the check falls back to the CPU on it)', async () => {
    const own = await createNodeGpuRuntime();
    const tiny = makeTinyQwen2({ hidden: 32, intermediate: 48, layers: 1, heads: 4, kvHeads: 2, vocab: 50, tie: true, seed: 2 });
    const dims = dimsFromConfig(tiny.config);
    const model = await createQwen2WebGpu(own, dims, tinyWeights(tiny));
    const z = await model.logits([1, 2, 3]);
    expect(maxRelError(z, await createQwen2Cpu(dims, tinyWeights(tiny)).logits([1, 2, 3]))).toBeLessThan(1e-3);
    loseDevice(own);
    await own.lostPromise;
    const err = await model.logits([1, 2, 3]).catch((e) => e);
    expect(err).toBeInstanceOf(GpuUnavailableError);
    expect((err as GpuUnavailableError).reason).toBe('device-lost');
    model.dispose();
  });
});

describe.skipIf(!HAS_FIXTURE)(fixtureSuite('WebGPU forward on tinystories-260k'), () => {
  it('64 tokens of eval text: logits max relative error < 1e-3', async () => {
    const dims = dimsFromConfig(fixtureJson('config.json'));
    const w = await loadSafetensorsWeights(FIXTURE_DIR);
    const src = { get: (n: string) => w.get(n) };
    const cpu = createQwen2Cpu(dims, src);
    const model = await createQwen2WebGpu(gpu!, dims, src);
    const x = fixtureJson<{ ids: number[] }>('eval.tokens.json').ids.slice(0, 64);
    const err = maxRelError(await model.logits(x), await cpu.logits(x));
    console.log(`fixture: max rel err ${err.toExponential(2)}`);
    expect(err).toBeLessThan(1e-3);
    model.dispose();
  });
});
