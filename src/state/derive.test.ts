import { describe, expect, it } from 'vitest';
import type { BackendCalibration } from '../core/estimate';
import { DEFAULT_SETTINGS } from '../core/settings';
import type { Preflight } from '../worker/protocol';
import { bundleName, estimateRun, gainText, progressView, resolveBackend } from './derive';

const cpu: BackendCalibration = { backend: 'cpu', description: 'CPU (TypeScript)', software: false, perTensorMs: 0.5, perParamNs: 400, samples: [] };
const swift: BackendCalibration = { backend: 'webgpu', description: 'google / swiftshader', software: true, perTensorMs: 150, perParamNs: 2000, samples: [] };
const pf = { parameters: 2_300_000, quantizedCount: 29, tensorBytes: 4.6e6, largestTensor: 131_072, outputBytes: 4.8e6 } as Preflight;

describe('resolveBackend', () => {
  it('"auto" becomes the backend measured faster, with a notice that says why', () => {
    const r = resolveBackend('auto', pf, DEFAULT_SETTINGS, [cpu, swift]);
    expect(r.backend).toBe('cpu');
    expect(r.notice).toMatch(/^Backend "auto": the CPU, measured faster for a model this size \(≈ <1 s; WebGPU \(google \/ swiftshader, a software adapter\) ≈ 9 s\)\.$/);
  });

  it('an explicit choice, or too little measured, is left alone', () => {
    expect(resolveBackend('webgpu', pf, DEFAULT_SETTINGS, [cpu, swift])).toEqual({ backend: 'webgpu' });
    expect(resolveBackend('auto', pf, DEFAULT_SETTINGS, [cpu])).toEqual({ backend: 'auto' });
    expect(resolveBackend('auto', undefined, DEFAULT_SETTINGS, [cpu, swift])).toEqual({ backend: 'auto' });
  });
});

describe('estimateRun', () => {
  it('adds the download for a Hub model and the zip to the memory for a zip destination', () => {
    const size = { parameters: pf.parameters, quantizedCount: pf.quantizedCount, tensorBytes: pf.tensorBytes, largestTensor: pf.largestTensor };
    const local = estimateRun(size, pf.outputBytes, DEFAULT_SETTINGS, 'auto', [cpu, swift], 'demo', 'folder');
    const hub = estimateRun(size, pf.outputBytes, DEFAULT_SETTINGS, 'auto', [cpu, swift], 'hub', 'zip');
    expect(local.chosen!.backend).toBe('cpu');
    expect(local.downloadSeconds).toBe(0);
    expect(hub.chosen!.seconds - local.chosen!.seconds).toBeCloseTo(4.6e6 / 50e6, 9);
    expect(hub.peakMemoryBytes - local.peakMemoryBytes).toBe(4.8e6);
    expect(estimateRun(size, 0, DEFAULT_SETTINGS, 'auto', [], 'demo', 'zip').measured).toBe(false);
  });
});

describe('gainText and progressView', () => {
  it('"+" means a lower error than plain RTN', () => {
    expect(gainText(0.2192)).toBe('+21.92');
    expect(gainText(-0.004)).toBe('−0.40');
    expect(gainText(null)).toBe('—');
  });

  it('shows the worker\'s measured rate and ETA; a finished run shows its average rate and no ETA', () => {
    const p = { phase: 'read' as const, tensorIndex: 5, tensorCount: 10, tensorName: 't', bytesRead: 500, bytesToRead: 1000, bytesWritten: 0, bytesToWrite: 0, elapsedMs: 2000 };
    const v = progressView({ ...p, estimate: { fraction: 0.5, readBytesPerSec: 300, averageReadBytesPerSec: 250, etaSeconds: 2.1 } });
    expect(v).toMatchObject({ fraction: 0.5, readBytesPerSec: 300, etaSeconds: 2.1 });
    const done = progressView({ ...p, estimate: { fraction: 0.5, readBytesPerSec: 300, averageReadBytesPerSec: 250, etaSeconds: 2.1 } }, true);
    expect(done).toMatchObject({ fraction: 1, readBytesPerSec: 250, etaSeconds: null });
  });
});

describe('bundleName', () => {
  it('one suffix per extra, in a fixed order; the budget only where it acts (4 bits)', () => {
    expect(bundleName('Qwen/Qwen2.5-0.5B', DEFAULT_SETTINGS)).toBe('Qwen2.5-0.5B-quarot-w4-sp-mse');
    expect(bundleName('tinystories-260k', { ...DEFAULT_SETTINGS, method: 'gptq', codebook: 'learned', w8Budget: 0.1, bitsOverride: 'down_proj=8' })).toBe('tinystories-260k-quarot-w4-sp-mse-gptq-lut-w8x10-mixed');
    expect(bundleName('m', { ...DEFAULT_SETTINGS, w8Budget: 0.025, rotation: 'none' })).toBe('m-quarot-w4-sp-mse-norot-w8x2.5');
    expect(bundleName('m', { ...DEFAULT_SETTINGS, bits: 8, w8Budget: 0.1, codebook: 'learned' })).toBe('m-quarot-w8-sp-mse-lut');
    expect(bundleName('m', { ...DEFAULT_SETTINGS, bits: 16, codebook: 'learned', bitsOverride: 'x=8' })).toBe('m-quarot-f16');
    expect(bundleName('m', { ...DEFAULT_SETTINGS, method: 'gptq', codebook: 'learned', inputScales: 'fitted' })).toBe('m-quarot-w4-sp-mse-gptq-lut-insc');
  });
});
