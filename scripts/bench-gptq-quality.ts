/**
 * npm run bench:gptq [-- --only fixture|outlier]
 *
 * What GPTQ buys, measured (the README's "Calibration and GPTQ" table), CPU backend and CPU
 * calibration forward, W4 sp/mse:
 *  - the real TinyStories fixture: perplexity on the first 40 windows of 256 tokens of eval.txt
 *    (FP ≈ 3.570), RTN vs GPTQ with rotation none/full, act-order on/off, embeddings quantized
 *    or not; calibration 64 × 256 from the demo's built-in calibration (the stories of the second
 *    half of eval.txt, never the evaluated windows), seed 0. Wall time and peak RSS of each run.
 *  - a random Qwen2 with outlier channels (hidden 128, intermediate 256, 2 layers, vocab 256,
 *    seed 11): mean KL to the original on 8 × 64 held-out random tokens, RTN vs GPTQ
 *    (embeddings not quantized), calibration 64 × 128 random ids.
 * Quality and speed are measured here, never asserted in timed tests.
 */
import { parseArgs } from 'node:util';
import { CpuBackend } from '../src/backends/cpu/cpu-backend';
import { runPipeline } from '../src/core/pipeline/run';
import type { PipelineCalibration } from '../src/core/pipeline/calibration';
import { calibErrorTotals } from '../src/core/pipeline/report';
import { dimsFromConfig } from '../src/core/qwen2/config';
import { parseSettings, type QuantSettings } from '../src/core/settings';
import { gptqCost, formatFlop } from '../src/core/gptq-cost';
import { evaluate } from '../src/eval/perplexity';
import { memoryModelSource, memorySink } from '../test/support/memory';
import { cpuModel, fixtureData, outlierData } from './quality-bench-data';

const { values } = parseArgs({ options: { only: { type: 'string' } } });

/** One pipeline run in memory; its wall time and the peak RSS sampled while it ran. */
async function quantize(files: Record<string, Uint8Array>, settings: Partial<Record<keyof QuantSettings, unknown>>, calib?: PipelineCalibration) {
  const sink = memorySink();
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 20);
  const t0 = performance.now();
  try {
    const result = await runPipeline({
      source: memoryModelSource(files), sink, backend: new CpuBackend(), settings: parseSettings(settings), target: { model: 'bench' }, calibration: calib,
    });
    return { files: sink.files, result, ms: performance.now() - t0, peakRss: Math.max(peak, process.memoryUsage().rss) };
  } finally {
    clearInterval(timer);
  }
}

const f4 = (x: number): string => x.toFixed(4);
const s1 = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const mb = (b: number): string => `${(b / 1e6).toFixed(0)} MB`;

async function fixture(): Promise<void> {
  const { files, tokens, calib, firstCalibToken } = await fixtureData();
  const fp = await cpuModel(files);
  const base = await evaluate(fp, fp, tokens, 256, 40);
  const cfg = dimsFromConfig(JSON.parse(new TextDecoder().decode(files['config.json'])));
  process.stdout.write(`fixture tinystories-260k, W4 sp/mse, first 40 windows × 256, FP perplexity ${f4(base.pplA)}; calibration 64 × 256 (demo's calib.tokens.json, eval ids ${firstCalibToken}+), GPTQ arithmetic ${formatFlop(gptqCost(cfg, 64, 256).total)}\n`);
  process.stdout.write('| method | rotation | act-order | embeddings | perplexity | Δ vs RTN | mean output error (GPTQ / RTN) | wall time | peak RSS |\n|---|---|---|---|---|---|---|---|---|\n');
  for (const rotation of ['full', 'none'] as const) {
    for (const embeddings of [true, false]) {
      const rtn = await quantize(files, { rotation, quantizeEmbeddings: embeddings });
      const pRtn = (await evaluate(fp, await cpuModel(rtn.files), tokens, 256, 40)).pplB!;
      process.stdout.write(`| RTN | ${rotation} | — | ${embeddings ? 'W4' : '16-bit'} | ${f4(pRtn)} | | | ${s1(rtn.ms)} | ${mb(rtn.peakRss)} |\n`);
      for (const actOrder of [true, false]) {
        const g = await quantize(files, { rotation, quantizeEmbeddings: embeddings, method: 'gptq', actOrder }, calib);
        const p = (await evaluate(fp, await cpuModel(g.files), tokens, 256, 40)).pplB!;
        const t = calibErrorTotals(g.result.reports);
        process.stdout.write(
          `| GPTQ | ${rotation} | ${actOrder ? 'on' : 'off'} | ${embeddings ? 'W4' : '16-bit'} | ${f4(p)} | ${(p - pRtn >= 0 ? '+' : '−') + Math.abs(p - pRtn).toFixed(4)} | ` +
            `${(t.meanWritten * 100).toFixed(2)} % / ${(t.meanRtn * 100).toFixed(2)} % | ${s1(g.ms)} | ${mb(g.peakRss)} |\n`,
        );
      }
    }
  }
}

async function outlier(): Promise<void> {
  const { files, ids, calib } = await outlierData();
  const fp = await cpuModel(files);
  process.stdout.write('\noutlier model (makeTinyQwen2 hidden 128, intermediate 256, 2 layers, vocab 256, seed 11, outliers), W4 sp/mse, embeddings 16-bit; mean KL on 8 × 64 random tokens; calibration 64 × 128 random ids\n');
  process.stdout.write('| rotation | RTN KL | GPTQ KL (act-order) | GPTQ / RTN | GPTQ wall time |\n|---|---|---|---|---|\n');
  for (const rotation of ['full', 'none'] as const) {
    const rtn = await quantize(files, { rotation, quantizeEmbeddings: false });
    const g = await quantize(files, { rotation, quantizeEmbeddings: false, method: 'gptq' }, calib);
    const kRtn = (await evaluate(fp, await cpuModel(rtn.files), ids, 64)).klMean!;
    const kG = (await evaluate(fp, await cpuModel(g.files), ids, 64)).klMean!;
    process.stdout.write(`| ${rotation} | ${f4(kRtn)} | ${f4(kG)} | ×${(kG / kRtn).toFixed(3)} | ${s1(g.ms)} |\n`);
  }
}

if (values.only !== 'outlier') await fixture();
if (values.only !== 'fixture') await outlier();
