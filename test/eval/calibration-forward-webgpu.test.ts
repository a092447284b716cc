/**
 * The WebGPU calibration forward (GPTQ's layer-by-layer pass, src/eval/calibration-forward-webgpu.ts)
 * against the CPU one on a random tiny model with biases and non-unit norms: the next residual
 * stream and every linear input agree (< 1e-4 relative), the inputs arrive as device rows of the
 * runtime (what the GPU GPTQ engine reads in place), a new array for a tensor is picked up
 * (norms and biases included: after fusion and rotation they are not the checkpoint's), and the
 * pass holds no layer weights of its own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LayerWeights, LinearInputRows } from '../../src/core/ports';
import { dimsFromConfig } from '../../src/core/qwen2/config';
import { EMBEDDING, layerNormName, projectionName, type LinearInput } from '../../src/core/qwen2/tensors';
import { cpuCalibrationForward } from '../../src/eval/calibration-forward';
import { webgpuCalibrationForward } from '../../src/eval/calibration-forward-webgpu';
import { createQwen2WebGpu } from '../../src/eval/forward-webgpu';
import { maxRelError } from '../../src/eval/perplexity';
import { deviceRowsOn } from '../../src/gpu/device-rows';
import { createNodeGpuRuntime } from '../../src/gpu/node';
import type { GpuRuntime } from '../../src/gpu/runtime';
import { makeTinyQwen2, mulberry32, tinyWeights } from '../support/tiny-qwen2';

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

describe('WebGPU calibration forward vs the CPU one', () => {
  it('has a device', () => expect(gpuError).toBe(''));

  const tiny = makeTinyQwen2({ hidden: 64, intermediate: 96, layers: 2, heads: 4, kvHeads: 2, vocab: 100, tie: true, seed: 8, outliers: true });
  const dims = dimsFromConfig(tiny.config);
  const base = tinyWeights(tiny);
  const rand = mulberry32(4);
  // Norms and the v bias as a transformed layer has them (not the checkpoint's).
  const weights = new Map(base);
  for (let l = 0; l < dims.layers; l++) {
    for (const n of ['input_layernorm', 'post_attention_layernorm'] as const) weights.set(layerNormName(l, n), Float32Array.from({ length: dims.hidden }, () => 0.5 + rand()));
    const vb = projectionName(l, 'v_proj', 'bias');
    weights.set(vb, base.get(vb)!.map((v) => -2 * v + 0.1));
  }
  const ids = Array.from({ length: 37 }, () => Math.floor(rand() * dims.vocab));

  async function run(factory: typeof cpuCalibrationForward, layer: number, lw: LayerWeights) {
    const f = await factory(dims, base.get(EMBEDDING)!);
    const inputs: Partial<Record<LinearInput, Float32Array>> = {};
    let device = 0;
    try {
      const h = await f.embed(ids);
      const out = await f.runLayer(layer, h, lw, async (input, x: LinearInputRows) => {
        if (gpu && deviceRowsOn(gpu, x)) device++;
        inputs[input] = await x.read();
      });
      return { h, out, inputs, device };
    } finally {
      await f.dispose();
    }
  }

  it('layer 1 with transformed norms and biases: output and linear inputs < 1e-4; inputs are device rows', async () => {
    const lw: LayerWeights = (n) => weights.get(n);
    const c = await run(cpuCalibrationForward, 1, lw);
    const g = await run(webgpuCalibrationForward(gpu!), 1, lw);
    expect(Array.from(g.h)).toEqual(Array.from(c.h)); // the embedding is a row gather on both
    const err = maxRelError(g.out, c.out);
    console.log(`calibration forward layer 1: max rel err ${err.toExponential(2)}`);
    expect(err).toBeLessThan(1e-4);
    for (const input of ['attn_in', 'attn_out', 'mlp_in', 'mlp_mid'] as const) expect(maxRelError(g.inputs[input]!, c.inputs[input]!)).toBeLessThan(1e-4);
    expect(g.device).toBe(4);
    expect(c.device).toBe(0);
  });

  it('picks up a new array for a norm, a bias or a projection between calls (device copies follow identity)', async () => {
    const f = await webgpuCalibrationForward(gpu!)(dims, base.get(EMBEDDING)!);
    const cpu = await cpuCalibrationForward(dims, base.get(EMBEDDING)!);
    try {
      const current = new Map(weights);
      const h = await f.embed(ids);
      const first = await f.runLayer(0, h, (n) => current.get(n));
      for (const name of [layerNormName(0, 'post_attention_layernorm'), projectionName(0, 'v_proj', 'bias'), projectionName(0, 'down_proj')]) {
        current.set(name, current.get(name)!.map((v) => v * 1.5 + 0.01));
        const got = await f.runLayer(0, h, (n) => current.get(n));
        const want = await cpu.runLayer(0, h, (n) => current.get(n));
        expect(maxRelError(got, want), name).toBeLessThan(1e-4);
        expect(maxRelError(got, first), name).toBeGreaterThan(1e-3);
      }
    } finally {
      await f.dispose();
      await cpu.dispose();
    }
  });

  it('a pass with per-call layers holds none: logits() says so, a missing tensor is named', async () => {
    const m = await createQwen2WebGpu(gpu!, dims, { get: (n) => base.get(n) }, { perCallLayers: true });
    try {
      expect(m.residentBytes).toBe(dims.vocab * dims.hidden * 4);
      await expect(m.logits([1, 2])).rejects.toThrow(/holds no layer weights \(perCallLayers\)/);
    } finally {
      m.dispose();
    }
    const f = await webgpuCalibrationForward(gpu!)(dims, base.get(EMBEDDING)!);
    try {
      await expect(f.runLayer(0, await f.embed([1]), (n) => (n.endsWith('up_proj.weight') ? undefined : weights.get(n)))).rejects.toThrow(/calibration forward: no model\.layers\.0\.mlp\.up_proj\.weight/);
    } finally {
      await f.dispose();
    }
  });
});
