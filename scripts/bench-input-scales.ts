/**
 * npx tsx scripts/bench-input-scales.ts [--only fixture|outlier]
 *
 * What fitted per-input-column scales (--input-scales fitted) buy, measured (README "Input
 * scales"), CPU backend, W4 sp/mse, uniform vs fitted, RTN and GPTQ (act-order), rotation none and
 * full, embeddings 16-bit:
 *  - the TinyStories fixture: perplexity on the first 40 windows of 256 tokens of eval.txt;
 *    calibration 64 × 256 from the demo's built-in calibration (never the evaluated windows);
 *  - the random outlier Qwen2 of bench-gptq-quality.ts (hidden 128, intermediate 256, 2 layers,
 *    vocab 256, seed 11): mean KL to the original on 8 × 64 held-out random tokens; calibration
 *    64 × 128 random ids.
 * RTN rows: the activation-free fit (no calibration) and the fit weighted by the Hessian diagonal
 * (calibration given; the quantization itself stays RTN).
 */
import { parseArgs } from 'node:util';
import { CpuBackend } from '../src/backends/cpu/cpu-backend';
import { runPipeline } from '../src/core/pipeline/run';
import type { PipelineCalibration } from '../src/core/pipeline/calibration';
import { parseSettings, type QuantSettings } from '../src/core/settings';
import { evaluate } from '../src/eval/perplexity';
import { memoryModelSource, memorySink } from '../test/support/memory';
import { cpuModel, fixtureData, outlierData } from './quality-bench-data';

const { values } = parseArgs({ options: { only: { type: 'string' } } });

async function quantize(files: Record<string, Uint8Array>, settings: Partial<Record<keyof QuantSettings, unknown>>, calib?: PipelineCalibration) {
  const sink = memorySink();
  const t0 = performance.now();
  await runPipeline({ source: memoryModelSource(files), sink, backend: new CpuBackend(), settings: parseSettings(settings), target: { model: 'bench' }, calibration: calib });
  return { files: sink.files, ms: performance.now() - t0 };
}

const f4 = (x: number): string => x.toFixed(4);
const s1 = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const rel = (a: number, b: number): string => `${a <= b ? '−' : '+'}${(Math.abs(a - b) / b * 100).toFixed(1)} %`;

type Measure = (files: Record<string, Uint8Array>) => Promise<number>;

async function table(title: string, files: Record<string, Uint8Array>, measure: Measure, calib: PipelineCalibration, metric: string): Promise<void> {
  process.stdout.write(`\n${title}\n| method | rotation | ${metric} uniform | ${metric} fitted | fitted vs uniform | wall uniform / fitted |\n|---|---|---|---|---|---|\n`);
  for (const method of ['rtn', 'gptq'] as const) {
    for (const rotation of ['none', 'full'] as const) {
      const base = { rotation, method, quantizeEmbeddings: false };
      const c = method === 'gptq' ? calib : undefined;
      const u = await quantize(files, { ...base, inputScales: 'uniform' }, c);
      const f = await quantize(files, { ...base, inputScales: 'fitted' }, c);
      const mu = await measure(u.files);
      const mf = await measure(f.files);
      process.stdout.write(`| ${method.toUpperCase()} | ${rotation} | ${f4(mu)} | ${f4(mf)} | ${rel(mf, mu)} | ${s1(u.ms)} / ${s1(f.ms)} |\n`);
      if (method === 'rtn') {
        // RTN with calibration given: the fit weighted by the Hessian diagonal (uniform RTN ignores calibration).
        const fc = await quantize(files, { ...base, inputScales: 'fitted' }, calib);
        const mc = await measure(fc.files);
        process.stdout.write(`| RTN, fit with calibration | ${rotation} | ${f4(mu)} | ${f4(mc)} | ${rel(mc, mu)} | ${s1(u.ms)} / ${s1(fc.ms)} |\n`);
      }
    }
  }
}

async function fixture(): Promise<void> {
  const { files, tokens, calib, firstCalibToken } = await fixtureData();
  const fp = await cpuModel(files);
  const fpPpl = (await evaluate(fp, fp, tokens, 256, 40)).pplA;
  await table(`fixture tinystories-260k, W4 sp/mse, embeddings 16-bit, perplexity on the first 40 windows × 256 (FP ${f4(fpPpl)}); GPTQ calibration 64 × 256`,
    files, async (q) => (await evaluate(fp, await cpuModel(q), tokens, 256, 40)).pplB!, calib, 'perplexity');
}

async function outlier(): Promise<void> {
  const { files, ids, calib } = await outlierData();
  const fp = await cpuModel(files);
  await table('outlier model (hidden 128, intermediate 256, 2 layers, vocab 256, seed 11), W4 sp/mse, embeddings 16-bit, mean KL on 8 × 64 random tokens; GPTQ calibration 64 × 128 random ids',
    files, async (q) => (await evaluate(fp, await cpuModel(q), ids, 64)).klMean!, calib, 'mean KL');
}

if (values.only !== 'fixture') await outlier();
if (values.only !== 'outlier') await fixture();
