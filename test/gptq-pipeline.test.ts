/**
 * GPTQ on the rotated model, end to end through the pipeline (CPU backend, CPU calibration
 * forward): perplexity on the real fixture and KL on a model with outlier channels, against RTN
 * with the same settings; bundles stay in the ANEMLL SP format; same inputs → same bytes; bad
 * calibration data is refused before anything is written.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CpuBackend } from '../src/backends/cpu/cpu-backend';
import { runPipeline } from '../src/core/pipeline/run';
import type { PipelineCalibration } from '../src/core/pipeline/calibration';
import { dimsFromConfig } from '../src/core/qwen2/config';
import { parseSettings, type QuantSettings } from '../src/core/settings';
import { mulberry32 } from '../src/demo/tiny-qwen2';
import { demoCalibrationFromEval } from '../src/demo/calibration-text';
import { cpuCalibrationForward } from '../src/eval/calibration-forward';
import { calibIdsSha256, sampleCalibration } from '../src/eval/calibration-set';
import { createQwen2Cpu } from '../src/eval/forward-cpu';
import { evaluate } from '../src/eval/perplexity';
import { loadWeights, weightSource, tinyModelFiles } from './support/bundle';
import { FIXTURE_DIR } from './support/fixture';
import { memoryModelSource, memorySink } from './support/memory';
import { checkSpBundle } from './support/sp-format';
import { describe, expect, test } from './support/fixtures';

async function calibration(samples: number[][], source: string): Promise<PipelineCalibration> {
  return { samples, forward: cpuCalibrationForward, source, sha256: await calibIdsSha256(samples) };
}

async function quantize(files: Record<string, Uint8Array>, settings: Partial<Record<keyof QuantSettings, unknown>>, calib?: PipelineCalibration) {
  const sink = memorySink();
  const result = await runPipeline({
    source: memoryModelSource(files), sink, backend: new CpuBackend(), settings: parseSettings(settings),
    target: { model: 'test-model' }, calibration: calib,
  });
  return { files: sink.files, result };
}

async function cpuModel(files: Record<string, Uint8Array>) {
  const cfg = JSON.parse(new TextDecoder().decode(files['config.json']));
  return createQwen2Cpu(dimsFromConfig(cfg), weightSource(await loadWeights(files)));
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

describe('GPTQ on tinystories-260k (calibration: 64 × 256 from the second half of eval.txt)', () => {
  test('W4: perplexity at least 0.10 below RTN, ≤ 3.92 with embeddings quantized; SP format', { timeout: 600_000 }, async ({ fixtureFiles }) => {
    const tokens: number[] = JSON.parse(readFileSync(join(FIXTURE_DIR, 'eval.tokens.json'), 'utf8')).ids;
    const demo = demoCalibrationFromEval(readFileSync(join(FIXTURE_DIR, 'eval.txt'), 'utf8'), JSON.parse(readFileSync(join(FIXTURE_DIR, 'eval.tokens.json'), 'utf8')));
    expect(demo.firstToken).toBeGreaterThanOrEqual(40 * 256); // never the evaluated windows
    const calib = await calibration(sampleCalibration(demo.ids, 64, 256, 0), 'tinystories eval.txt, second half');
    const fp = await cpuModel(fixtureFiles);
    const ppl: Record<string, number> = {};
    // Embeddings quantized (the default); the embeddings-off figures are in npm run bench:gptq.
    for (const embeddings of [true]) {
      for (const method of ['rtn', 'gptq'] as const) {
        const out = await quantize(fixtureFiles, { method, quantizeEmbeddings: embeddings }, method === 'gptq' ? calib : undefined);
        const r = await evaluate(fp, await cpuModel(out.files), tokens, 256, 40);
        ppl[`${method} emb=${embeddings}`] = r.pplB!;
        if (method === 'gptq' && embeddings) {
          await checkSpBundle(out.files, { bits: 4 });
          const qc = JSON.parse(new TextDecoder().decode(out.files['quantization_config.json']));
          expect(qc.method).toBe('gptq');
          expect(qc.calibration).toMatchObject({ samples: 64, seqlen: 256, tokens: 64 * 256, token_ids_sha256: calib.sha256 });
          const projections = out.result.reports.filter((t) => t.kind === 'projection');
          expect(projections.every((t) => t.calibError && t.calibError.written < t.calibError.rtn)).toBe(true);
        }
      }
    }
    console.log(`fixture W4 sp/mse full, first 40 windows (FP ${3.570}): ${Object.entries(ppl).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ')}`);
    expect(ppl['gptq emb=true']).toBeLessThanOrEqual(ppl['rtn emb=true'] - 0.1);
    expect(ppl['gptq emb=true']).toBeLessThanOrEqual(3.92);
  });
});

describe('GPTQ on a random model with outlier channels', () => {
  test('W4 full rotation, embeddings not quantized: mean KL at most 0.6 × RTN; same inputs, same bytes', { timeout: 300_000 }, async () => {
    const opts = { hidden: 128, intermediate: 256, layers: 2, heads: 4, kvHeads: 2, vocab: 256, tie: true, seed: 11, outliers: true };
    const files = await tinyModelFiles(opts);
    const rand = mulberry32(3);
    const samples = Array.from({ length: 64 }, () => Array.from({ length: 128 }, () => Math.floor(rand() * 256)));
    const calib = await calibration(samples, 'random ids');
    const evalRand = mulberry32(99);
    const ids = Array.from({ length: 8 * 64 }, () => Math.floor(evalRand() * 256));
    const fp = await cpuModel(files);
    const kl: Record<string, number> = {};
    for (const method of ['rtn', 'gptq'] as const) {
      const out = await quantize(files, { method, quantizeEmbeddings: false }, method === 'gptq' ? calib : undefined);
      kl[method] = (await evaluate(fp, await cpuModel(out.files), ids, 64)).klMean!;
      if (method === 'gptq') {
        await checkSpBundle(out.files, { bits: 4, quantizeEmbeddings: false });
        const again = await quantize(files, { method, quantizeEmbeddings: false }, calib);
        expect(sha(again.files['model.safetensors'])).toBe(sha(out.files['model.safetensors']));
      }
    }
    console.log(`outlier model W4 sp/mse full: mean KL RTN ${kl.rtn.toFixed(4)} → GPTQ ${kl.gptq.toFixed(4)} (×${(kl.gptq / kl.rtn).toFixed(3)})`);
    expect(kl.gptq).toBeLessThanOrEqual(0.6 * kl.rtn);
  });
});

describe('GPTQ refuses bad calibration before writing anything', () => {
  const opts = { hidden: 32, intermediate: 48, layers: 1, heads: 2, kvHeads: 1, vocab: 40, tie: true, seed: 2 };
  test.each([
    ['no calibration at all', undefined, /method gptq needs calibration data/],
    ['an id outside the vocabulary', [[1, 2, 40]], /sample 0, position 2 holds token id 40; the model's vocabulary is 0…39/],
    ['an empty sample', [[1, 2], []], /sample 1 is empty/],
  ] as const)('%s', async (_, samples, message) => {
    const files = await tinyModelFiles(opts);
    const sink = memorySink();
    const calib = samples ? await calibration(samples.map((s) => [...s]), 'test') : undefined;
    await expect(runPipeline({
      source: memoryModelSource(files), sink, backend: new CpuBackend(), settings: parseSettings({ method: 'gptq' }),
      target: { model: 'test-model' }, calibration: calib,
    })).rejects.toThrow(message);
    expect(sink.created).toEqual([]);
    expect(sink.state).toBe('aborted');
  });
});
