// GPTQ end to end on the WebGPU backend (its GPTQ engine: Hessians and column updates in WGSL,
// Cholesky on the host) with the WebGPU calibration forward on the same device, against the CPU
// backend with the CPU forward: ≥ 99.9 % of the integer codes equal and perplexity / KL within
// 0.5 %; the same backend twice gives the same bytes.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CpuBackend } from '../../src/backends/cpu/cpu-backend';
import type { WebGpuBackend } from '../../src/backends/webgpu/webgpu-backend';
import type { Backend, GptqEngine } from '../../src/core/ports';
import { cpuGptqEngine } from '../../src/core/quant/gptq-engine';
import { runPipeline } from '../../src/core/pipeline/run';
import type { PipelineCalibration } from '../../src/core/pipeline/calibration';
import { dimsFromConfig } from '../../src/core/qwen2/config';
import { openSafetensorsModel } from '../../src/core/safetensors/model';
import { readTensorF32 } from '../../src/core/safetensors/read-tensor';
import { roundToF16 } from '../../src/core/safetensors/dtype';
import { parseSettings, type QuantSettings } from '../../src/core/settings';
import { demoCalibrationFromEval } from '../../src/demo/calibration-text';
import { mulberry32 } from '../../src/demo/tiny-qwen2';
import { calibrationForwardFor } from '../../src/eval/calibration-forward-webgpu';
import { calibIdsSha256, sampleCalibration } from '../../src/eval/calibration-set';
import { createQwen2Cpu } from '../../src/eval/forward-cpu';
import { evaluate } from '../../src/eval/perplexity';
import { loadWeights, tinyModelFiles, weightSource } from '../support/bundle';
import { FIXTURE_DIR } from '../support/fixture';
import { describe, expect, test } from '../support/fixtures';
import { gpuBackend, gpuEnv } from '../support/gpu';
import { memoryModelSource, memorySink } from '../support/memory';
import { checkSpBundle } from '../support/sp-format';

const env = await gpuEnv();
if (!env.adapter) console.warn(`WebGPU GPTQ pipeline tests skipped: ${env.reason}`);

async function quantize(files: Record<string, Uint8Array>, backend: Backend, settings: Partial<Record<keyof QuantSettings, unknown>>, samples: number[][]) {
  const calibration: PipelineCalibration = { samples, forward: calibrationForwardFor(backend), source: 'test', sha256: await calibIdsSha256(samples) };
  const sink = memorySink();
  const t0 = performance.now();
  await runPipeline({ source: memoryModelSource(files), sink, backend, settings: parseSettings(settings), target: { model: 'test-model' }, calibration });
  return { files: sink.files, ms: performance.now() - t0 };
}

/** Every projection's integer codes as ANEMLL's loader recovers them: round(weight / fp16(s_in·s_out)). */
async function projectionCodes(files: Record<string, Uint8Array>): Promise<Map<string, Int32Array>> {
  const model = await openSafetensorsModel(memoryModelSource(files));
  const read = async (n: string) => {
    const t = model.tensors.get(n)!;
    return { shape: t.info.shape, data: await readTensorF32(model.files.get(t.file)!.source, t.info) };
  };
  const out = new Map<string, Int32Array>();
  for (const name of model.tensors.keys()) {
    if (!name.endsWith('_proj.weight')) continue;
    const pre = name.slice(0, -'.weight'.length);
    const w = await read(name);
    const si = (await read(`${pre}.input_scales`)).data;
    const so = (await read(`${pre}.output_scales`)).data;
    const [rows, cols] = w.shape;
    const q = new Int32Array(rows * cols);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) q[r * cols + c] = Math.round(w.data[r * cols + c] / roundToF16(si[c] * so[r]));
    out.set(name, q);
  }
  return out;
}

async function codeAgreement(a: Record<string, Uint8Array>, b: Record<string, Uint8Array>): Promise<{ agree: number; codes: number; worst: string }> {
  const ca = await projectionCodes(a);
  const cb = await projectionCodes(b);
  expect([...ca.keys()].sort()).toEqual([...cb.keys()].sort());
  let same = 0, total = 0, worst = '', worstRate = 1;
  for (const [name, qa] of ca) {
    const qb = cb.get(name)!;
    let s = 0;
    for (let i = 0; i < qa.length; i++) if (qa[i] === qb[i]) s++;
    if (s / qa.length < worstRate) { worstRate = s / qa.length; worst = `${name} ${(100 * worstRate).toFixed(2)} %`; }
    same += s;
    total += qa.length;
  }
  return { agree: same / total, codes: total, worst };
}

async function cpuModel(files: Record<string, Uint8Array>) {
  const cfg = JSON.parse(new TextDecoder().decode(files['config.json']));
  return createQwen2Cpu(dimsFromConfig(cfg), weightSource(await loadWeights(files)));
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/**
 * An engine that runs the CPU's GPTQ and keeps its results, and also `other`'s from the same rows
 * (its own Hessian), counting equal codes. The pipeline quantizes an input's projections right
 * after that input's Hessian, so the latest Hessian of `other` is the one to use.
 */
function teeEngine(other: GptqEngine) {
  const stats = { same: 0, total: 0, worst: 1 };
  let otherH: Float64Array | null = null;
  const engine: GptqEngine = {
    description: `CPU + ${other.description}`,
    hessian(dim, name) {
      const a = cpuGptqEngine.hessian(dim, name);
      const b = other.hessian(dim, name);
      return {
        dim,
        get samples() { return a.samples; },
        async add(x) { await a.add(x); await b.add(x); },
        async hessian() { otherH = await b.hessian(); return a.hessian(); },
        dispose() { a.dispose(); b.dispose(); },
      };
    },
    async quantize(w, rows, cols, h, opts) {
      const mine = await cpuGptqEngine.quantize(w, rows, cols, h, opts);
      const theirs = await other.quantize(w, rows, cols, otherH!, opts);
      let same = 0;
      for (let i = 0; i < mine.codes.length; i++) if (mine.codes[i] === theirs.codes[i]) same++;
      stats.same += same;
      stats.total += mine.codes.length;
      stats.worst = Math.min(stats.worst, same / mine.codes.length);
      return mine;
    },
  };
  return { engine, stats };
}

describe.skipIf(!env.adapter)('GPTQ on the WebGPU backend vs the CPU backend', () => {
  test('outlier model, W4 full rotation: ≥ 99.9 % of codes equal, KL within 0.5 %, same bytes twice, SP format', { timeout: 600_000 }, async () => {
    const files = await tinyModelFiles({ hidden: 128, intermediate: 256, layers: 2, heads: 4, kvHeads: 2, vocab: 256, tie: true, seed: 11, outliers: true });
    const rand = mulberry32(3);
    const samples = Array.from({ length: 64 }, () => Array.from({ length: 128 }, () => Math.floor(rand() * 256)));
    const settings = { method: 'gptq', quantizeEmbeddings: false };
    const cpu = await quantize(files, new CpuBackend(), settings, samples);
    const gpu: WebGpuBackend = await gpuBackend(env);
    let g1, g2;
    try {
      g1 = await quantize(files, gpu, settings, samples);
      g2 = await quantize(files, gpu, settings, samples);
    } finally {
      await gpu.dispose();
    }
    expect(sha(g2.files['model.safetensors'])).toBe(sha(g1.files['model.safetensors']));
    await checkSpBundle(g1.files, { bits: 4, quantizeEmbeddings: false });
    const { agree, codes, worst } = await codeAgreement(g1.files, cpu.files);
    const evalRand = mulberry32(99);
    const ids = Array.from({ length: 8 * 64 }, () => Math.floor(evalRand() * 256));
    const fp = await cpuModel(files);
    const klCpu = (await evaluate(fp, await cpuModel(cpu.files), ids, 64)).klMean!;
    const klGpu = (await evaluate(fp, await cpuModel(g1.files), ids, 64)).klMean!;
    const pplCpu = (await evaluate(fp, await cpuModel(cpu.files), ids, 64)).pplB!;
    const pplGpu = (await evaluate(fp, await cpuModel(g1.files), ids, 64)).pplB!;
    console.log(`outlier model GPTQ W4: codes equal ${(100 * agree).toFixed(3)} % of ${codes} (worst ${worst}); KL CPU ${klCpu.toFixed(5)} vs WebGPU ${klGpu.toFixed(5)}; ppl ${pplCpu.toFixed(4)} vs ${pplGpu.toFixed(4)}; wall CPU ${(cpu.ms / 1000).toFixed(1)} s, WebGPU ${(g1.ms / 1000).toFixed(1)} s`);
    expect(agree).toBeGreaterThanOrEqual(0.999);
    expect(Math.abs(klGpu - klCpu)).toBeLessThanOrEqual(0.005 * klCpu);
    expect(Math.abs(pplGpu - pplCpu)).toBeLessThanOrEqual(0.005 * pplCpu);
  });

  test('tinystories-260k, W4, calibration 64 × 256 from eval.txt\'s second half: ≥ 99.9 % of codes equal (engines on the same inputs, and whole backends), perplexity within 0.5 %', { timeout: 1_200_000 }, async ({ fixtureFiles }) => {
    const tokens: number[] = JSON.parse(readFileSync(join(FIXTURE_DIR, 'eval.tokens.json'), 'utf8')).ids;
    const demo = demoCalibrationFromEval(readFileSync(join(FIXTURE_DIR, 'eval.txt'), 'utf8'), JSON.parse(readFileSync(join(FIXTURE_DIR, 'eval.tokens.json'), 'utf8')));
    const samples = sampleCalibration(demo.ids, 64, 256, 0);
    const settings = { method: 'gptq', quantizeEmbeddings: true };
    const cpu = await quantize(fixtureFiles, new CpuBackend(), settings, samples);
    const gpu = await gpuBackend(env);
    let g;
    let engine = { same: 0, total: 0, worst: 1 };
    try {
      // 1. The engines on the same inputs: the CPU run, every tensor also quantized by the GPU
      //    engine (GPU Hessian, GPU column updates) from the same calibration rows.
      const tee = teeEngine(gpu.gptq);
      const teeRun = await quantize(fixtureFiles, Object.assign(Object.create(new CpuBackend()), { gptq: tee.engine }), settings, samples);
      expect(sha(teeRun.files['model.safetensors'])).toBe(sha(cpu.files['model.safetensors'])); // the CPU's results were kept
      engine = tee.stats;
      // 2. The whole WebGPU backend (its forward pass too), where each layer sees its own quantized predecessors.
      g = await quantize(fixtureFiles, gpu, settings, samples);
    } finally {
      await gpu.dispose();
    }
    await checkSpBundle(g.files, { bits: 4 });
    const { agree, codes, worst } = await codeAgreement(g.files, cpu.files);
    const fp = await cpuModel(fixtureFiles);
    const pplCpu = (await evaluate(fp, await cpuModel(cpu.files), tokens, 256, 40)).pplB!;
    const pplGpu = (await evaluate(fp, await cpuModel(g.files), tokens, 256, 40)).pplB!;
    console.log(
      `fixture GPTQ W4: engines on the same inputs ${(100 * engine.same / engine.total).toFixed(3)} % of ${engine.total} codes equal (worst tensor ${(100 * engine.worst).toFixed(2)} %); ` +
        `whole backends ${(100 * agree).toFixed(3)} % of ${codes} (worst ${worst}); perplexity CPU ${pplCpu.toFixed(4)} vs WebGPU ${pplGpu.toFixed(4)}; wall CPU ${(cpu.ms / 1000).toFixed(1)} s, WebGPU ${(g.ms / 1000).toFixed(1)} s`,
    );
    expect(engine.same / engine.total).toBeGreaterThanOrEqual(0.999);
    // End to end each layer sees its own quantized predecessors, so an early flip would spread
    // (f32 column updates gave 95 % here; the double-f32 ones give 100 %).
    expect(agree).toBeGreaterThanOrEqual(0.999);
    expect(Math.abs(pplGpu - pplCpu)).toBeLessThanOrEqual(0.005 * pplCpu);
  });
});
