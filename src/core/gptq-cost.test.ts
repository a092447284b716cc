import { describe, expect, it } from 'vitest';
import { describeGptqCost, formatFlop, gptqCost } from './gptq-cost';

// Qwen2.5-0.5B's shapes (SPEC §4's table is for 128 × 512 calibration tokens).
const QWEN05 = { hidden: 896, intermediate: 4864, layers: 24, heads: 14, kvHeads: 2, headDim: 64 };

describe('gptqCost', () => {
  it('reproduces SPEC §4 per part on Qwen2.5-0.5B with 128 × 512 tokens (one pass = 47 T; the pipeline makes 5)', () => {
    const c = gptqCost(QWEN05, 128, 512);
    expect(c.forward / c.passesPerLayer / 1e12).toBeCloseTo(47, 0);
    expect(c.attention / c.passesPerLayer / 1e12).toBeGreaterThan(1.4);
    expect(c.attention / c.passesPerLayer / 1e12).toBeLessThan(1.5); // causal half of 2.9 T
    expect(c.hessians / 1e12).toBeGreaterThan(41);
    expect(c.hessians / 1e12).toBeLessThan(42.5); // symmetric half of 82 T
    expect(c.cholesky / 1e12).toBeGreaterThan(3.6);
    expect(c.cholesky / 1e12).toBeLessThan(4.0);
    expect(c.updates / 1e12).toBeCloseTo(0.73, 1);
    expect(c.total).toBeCloseTo(c.forward + c.attention + c.hessians + c.cholesky + c.updates, -3);
    expect(c.largestHessianBytes).toBe(4864 * 4864 * 8);
    expect(c.largestInputBytes).toBe(65536 * 4864 * 4);
  });

  it('scales linearly in tokens for the forward and Hessians, not for the factorisations', () => {
    const a = gptqCost(QWEN05, 64, 512);
    const b = gptqCost(QWEN05, 128, 512);
    expect(b.forward / a.forward).toBeCloseTo(2, 10);
    expect(b.hessians / a.hessians).toBeCloseTo(2, 10);
    expect(b.cholesky).toBe(a.cholesky);
    expect(b.updates).toBe(a.updates);
  });

  it('formats', () => {
    expect(formatFlop(2.5e12)).toBe('2.5 TFLOP');
    expect(formatFlop(3.4e11)).toBe('340.0 GFLOP');
    expect(describeGptqCost(gptqCost(QWEN05, 128, 512))).toMatch(/^≈ \d+\.\d TFLOP: calibration forward .* \(5 passes per layer\)/);
  });
});
