import { describe, expect, it } from 'vitest';
import { DEFAULT_TILE_BYTES } from './pipeline/tiled';
import { computeSeconds, fasterBackend, fitCost, knownModelSize, peakMemoryBytes, QWEN25_MODELS, settingsFactor, type BackendCalibration } from './estimate';
import { DEFAULT_SETTINGS } from './settings';

describe('fitCost', () => {
  it('recovers overhead and per-parameter cost from two exact samples', () => {
    // 5 ms per tensor + 2 ns per parameter
    const t = (tensors: number, parameters: number) => ({ tensors, parameters, ms: 5 * tensors + 2e-6 * parameters });
    const c = fitCost([t(8, 50_000), t(15, 1_000_000)]);
    expect(c.perTensorMs).toBeCloseTo(5, 9);
    expect(c.perParamNs).toBeCloseTo(2, 9);
  });

  it('never returns a negative coefficient', () => {
    // Noise that would make the overhead negative: the fit falls back to per-parameter only.
    const c = fitCost([{ tensors: 8, parameters: 50_000, ms: 1 }, { tensors: 9, parameters: 1_000_000, ms: 100 }]);
    expect(c.perTensorMs).toBeGreaterThanOrEqual(0);
    expect(c.perParamNs).toBeGreaterThanOrEqual(0);
    expect(fitCost([{ tensors: 4, parameters: 1000, ms: 2 }])).toEqual({ perTensorMs: 0.5, perParamNs: 0 });
  });
});

describe('knownModelSize', () => {
  it('gives the published parameter counts of Qwen2.5', () => {
    const [p05, p15, p3, p7] = QWEN25_MODELS.map((m) => knownModelSize(m).parameters);
    expect(p05 / 1e6).toBeCloseTo(494.0, 0);
    expect(p15 / 1e9).toBeCloseTo(1.54, 2);
    expect(p3 / 1e9).toBeCloseTo(3.09, 2);
    expect(p7 / 1e9).toBeCloseTo(7.62, 2);
    expect(knownModelSize(QWEN25_MODELS[0]).quantizedCount).toBe(24 * 7 + 1);
    expect(knownModelSize(QWEN25_MODELS[0]).largestTensor).toBe(151936 * 896);
  });
});

describe('choosing a backend', () => {
  const cpu: BackendCalibration = { backend: 'cpu', description: 'CPU', software: false, perTensorMs: 0.2, perParamNs: 800, samples: [] };
  const gpu: BackendCalibration = { backend: 'webgpu', description: 'GPU', software: false, perTensorMs: 40, perParamNs: 10, samples: [] };
  const swiftshader: BackendCalibration = { backend: 'webgpu', description: 'SwiftShader', software: true, perTensorMs: 300, perParamNs: 4000, samples: [] };
  const tiny = { parameters: 260_000, quantizedCount: 36, tensorBytes: 1e6, largestTensor: 32_768 };
  const big = knownModelSize(QWEN25_MODELS[0]);

  it('picks the CPU for a tiny model and the GPU for a big one', () => {
    expect(fasterBackend([cpu, gpu], tiny, DEFAULT_SETTINGS)!.backend.backend).toBe('cpu');
    expect(fasterBackend([cpu, gpu], big, DEFAULT_SETTINGS)!.backend.backend).toBe('webgpu');
  });

  it('a software adapter measures slow and loses to the CPU at every size', () => {
    expect(fasterBackend([swiftshader, cpu], tiny, DEFAULT_SETTINGS)!.backend.backend).toBe('cpu');
    expect(fasterBackend([swiftshader, cpu], big, DEFAULT_SETTINGS)!.backend.backend).toBe('cpu');
  });

  it('scales with the settings and the model', () => {
    const mse = computeSeconds(cpu, big, DEFAULT_SETTINGS);
    expect(mse).toBeCloseTo((0.2 * 169) / 1000 + 800e-9 * big.parameters, 6);
    expect(computeSeconds(cpu, big, { ...DEFAULT_SETTINGS, clip: 'absmax' })).toBeCloseTo(mse * settingsFactor({ ...DEFAULT_SETTINGS, clip: 'absmax' }), 9);
    expect(settingsFactor({ ...DEFAULT_SETTINGS, clip: 'absmax' })).toBeLessThan(1);
  });

  it('counts the zip in memory only for the zip destination', () => {
    expect(peakMemoryBytes(tiny, 1e6, 'zip') - peakMemoryBytes(tiny, 1e6, 'folder')).toBe(1e6);
  });

  it('tiled: memory follows the largest projection and the tile, not the vocabulary', () => {
    const q7 = knownModelSize(QWEN25_MODELS[3]);
    const rtn7 = peakMemoryBytes(q7, 0, 'folder');
    // down_proj (18944 × 3584) once in f32 (the app's in-memory column slabs) + four 32 MiB tiles.
    expect(rtn7).toBe(4 * 18944 * 3584 + 4 * DEFAULT_TILE_BYTES);
    expect(peakMemoryBytes({ ...q7, largestTensor: 2 * q7.largestTensor }, 0, 'folder')).toBe(rtn7);
    // GPTQ / learned codebooks hold projections whole: three f32 copies.
    expect(peakMemoryBytes(q7, 0, 'folder', { wholeProjections: true })).toBe(3 * 4 * 18944 * 3584 + 4 * DEFAULT_TILE_BYTES);
    // A model smaller than a tile holds its largest tensor, not a whole tile.
    expect(peakMemoryBytes(tiny, 0, 'folder')).toBe(5 * 4 * 32_768);
  });
});
