/**
 * Beyond QuaRot-GPTQ inside ANEMLL's format (issue 12): learned per-tensor codebooks and mixed
 * 4/8-bit precision by calibration sensitivity, through the whole pipeline — KL on the outlier
 * model and perplexity on the fixture against fixed bounds, and the bundles pass the SP format
 * check with ANEMLL's fp16 de-fuse + snap against the learned codebooks.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CpuBackend } from '../src/backends/cpu/cpu-backend';
import type { PipelineCalibration } from '../src/core/pipeline/calibration';
import { runPipeline } from '../src/core/pipeline/run';
import { dimsFromConfig } from '../src/core/qwen2/config';
import { parseSettings, type QuantSettings } from '../src/core/settings';
import { demoCalibrationFromEval } from '../src/demo/calibration-text';
import { mulberry32 } from '../src/demo/tiny-qwen2';
import { cpuCalibrationForward } from '../src/eval/calibration-forward';
import { calibIdsSha256, sampleCalibration } from '../src/eval/calibration-set';
import { createQwen2Cpu } from '../src/eval/forward-cpu';
import { evaluate } from '../src/eval/perplexity';
import { loadWeights, tinyModelFiles, weightSource } from './support/bundle';
import { FIXTURE_DIR } from './support/fixture';
import { describe, expect, test } from './support/fixtures';
import { memoryModelSource, memorySink } from './support/memory';
import { checkSpBundle } from './support/sp-format';

const BEST = { method: 'gptq', codebook: 'learned', w8Budget: '0.10', quantizeEmbeddings: false } as const;

async function calibration(samples: number[][]): Promise<PipelineCalibration> {
  return { samples, forward: cpuCalibrationForward, source: 'test', sha256: await calibIdsSha256(samples) };
}

async function quantize(files: Record<string, Uint8Array>, settings: Partial<Record<keyof QuantSettings, unknown>>, calib?: PipelineCalibration) {
  const sink = memorySink();
  const result = await runPipeline({ source: memoryModelSource(files), sink, backend: new CpuBackend(), settings: parseSettings(settings), target: { model: 'test-model' }, calibration: calib });
  return { files: sink.files, result };
}

async function cpuModel(files: Record<string, Uint8Array>) {
  const cfg = JSON.parse(new TextDecoder().decode(files['config.json']));
  return createQwen2Cpu(dimsFromConfig(cfg), weightSource(await loadWeights(files)));
}

function qconfig(files: Record<string, Uint8Array>) {
  return JSON.parse(new TextDecoder().decode(files['quantization_config.json'])) as {
    weight_bits: number; layers_quantized: number; codebook: string; w8_budget: number;
    weight_bits_per_tensor: Record<string, { bits: number; codebook: string }>;
  };
}

describe('GPTQ + learned codebook + 10 % at 8 bits', () => {
  // Issue 12's target. Measured 0.0121 with the layer-output sensitivity ranking (layer 0 q/k_proj at 8 bits,
  // 8.3 % of the parameters); GPTQ alone 0.177, GPTQ + learned codebook 0.277, ranking by tr(ΔHΔᵀ)/tr(WHWᵀ) 0.277.
  test('outlier model: mean KL ≤ 0.12; 4- and 8-bit tensors with learned codebooks pass the SP format check', { timeout: 1_200_000 }, async () => {
    const opts = { hidden: 128, intermediate: 256, layers: 2, heads: 4, kvHeads: 2, vocab: 256, tie: true, seed: 11, outliers: true };
    const files = await tinyModelFiles(opts);
    const rand = mulberry32(3);
    const calib = await calibration(Array.from({ length: 64 }, () => Array.from({ length: 128 }, () => Math.floor(rand() * 256))));
    const evalRand = mulberry32(99);
    const ids = Array.from({ length: 8 * 64 }, () => Math.floor(evalRand() * 256));
    const fp = await cpuModel(files);
    const out = await quantize(files, BEST, calib);
    const kl = (await evaluate(fp, await cpuModel(out.files), ids, 64)).klMean!;
    const qc = qconfig(out.files);
    const per = Object.values(qc.weight_bits_per_tensor);
    const params8 = out.result.reports.filter((r) => r.kind === 'projection' && r.bits === 8).reduce((n, r) => n + r.shape[0] * r.shape[1], 0);
    const params = out.result.reports.filter((r) => r.kind === 'projection').reduce((n, r) => n + r.shape[0] * r.shape[1], 0);
    console.log(`outlier model, GPTQ + learned codebook + W8 budget 0.10: mean KL ${kl.toFixed(4)}; ${per.filter((t) => t.bits === 8).length} of ${per.length} projections at 8 bits (${(100 * params8 / params).toFixed(1)} % of parameters)`);
    expect(kl).toBeLessThanOrEqual(0.12);
    expect(params8).toBeGreaterThan(0);
    expect(params8 / params).toBeLessThanOrEqual(0.1);
    expect(qc.weight_bits).toBe(4);
    expect(qc.codebook).toBe('learned');
    expect(per.every((t) => t.codebook === 'learned')).toBe(true);
    const { bitsSeen } = await checkSpBundle(out.files, { bits: 4, quantizeEmbeddings: false, learned: true });
    expect([...bitsSeen].sort()).toEqual([4, 8]);
  });

  // Issue 12's target. Measured 3.7931 (FP 3.5701; 3.8252 with the earlier per-tensor ranking).
  test('tinystories-260k: perplexity ≤ 3.85 (first 40 windows), calibration 64 × 256 from the second half of eval.txt', { timeout: 1_200_000 }, async ({ fixtureFiles }) => {
    const tokens: number[] = JSON.parse(readFileSync(join(FIXTURE_DIR, 'eval.tokens.json'), 'utf8')).ids;
    const demo = demoCalibrationFromEval(readFileSync(join(FIXTURE_DIR, 'eval.txt'), 'utf8'), JSON.parse(readFileSync(join(FIXTURE_DIR, 'eval.tokens.json'), 'utf8')));
    const calib = await calibration(sampleCalibration(demo.ids, 64, 256, 0));
    const fp = await cpuModel(fixtureFiles);
    const out = await quantize(fixtureFiles, BEST, calib);
    const r = await evaluate(fp, await cpuModel(out.files), tokens, 256, 40);
    console.log(`fixture, GPTQ + learned codebook + W8 budget 0.10, embeddings 16-bit: ppl ${r.pplB!.toFixed(4)} (FP ${r.pplA.toFixed(4)}), KL ${r.klMean!.toFixed(4)}`);
    expect(r.pplB!).toBeLessThanOrEqual(3.85);
    await checkSpBundle(out.files, { bits: 4, quantizeEmbeddings: false, learned: true });
  });

  test('explicit overrides: down_proj at 8 bits, layer 0 q_proj unquantized; a pattern matching nothing is refused', async () => {
    const files = await tinyModelFiles({ hidden: 32, intermediate: 48, layers: 2, heads: 2, kvHeads: 1, vocab: 40, tie: true, seed: 2 });
    const out = await quantize(files, { bitsOverride: 'down_proj=8,layers.0.self_attn.q_proj=16' });
    const per = qconfig(out.files).weight_bits_per_tensor;
    expect(per['model.layers.1.mlp.down_proj.weight']).toEqual({ bits: 8, codebook: 'uniform' });
    expect(per['model.layers.1.mlp.up_proj.weight']).toEqual({ bits: 4, codebook: 'uniform' });
    expect(per['model.layers.0.self_attn.q_proj.weight']).toBeUndefined();
    await expect(quantize(files, { bitsOverride: 'dwn_proj=8' })).rejects.toThrow(/"dwn_proj" matches no quantized tensor/);
    await expect(quantize(files, { w8Budget: '0.1' })).rejects.toThrow(/--w8-budget .* give calibration data/);
  });
});
