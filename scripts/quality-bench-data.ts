/**
 * The data the quality benches (bench:gptq, bench:mixed, bench-input-scales) measure on, written once:
 * the tinystories-260k fixture with its demo calibration (never overlapping the 40 evaluated windows),
 * and the random outlier model with random-id calibration and evaluation tokens.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { PipelineCalibration } from '../src/core/pipeline/calibration';
import { dimsFromConfig } from '../src/core/qwen2/config';
import { mulberry32 } from '../src/demo/tiny-qwen2';
import { demoCalibrationFromEval } from '../src/demo/calibration-text';
import { cpuCalibrationForward } from '../src/eval/calibration-forward';
import { calibIdsSha256, sampleCalibration } from '../src/eval/calibration-set';
import { createQwen2Cpu } from '../src/eval/forward-cpu';
import { loadWeights, tinyModelFiles, readFolder, weightSource } from '../test/support/bundle';

export const FIXTURE = resolve(import.meta.dirname, '../../shared/fixtures/tinystories-260k');

export const OUTLIER_MODEL = { hidden: 128, intermediate: 256, layers: 2, heads: 4, kvHeads: 2, vocab: 256, tie: true, seed: 11, outliers: true } as const;

export async function calibration(samples: number[][], source: string): Promise<PipelineCalibration> {
  return { samples, forward: cpuCalibrationForward, source, sha256: await calibIdsSha256(samples) };
}

export async function cpuModel(files: Record<string, Uint8Array>) {
  const cfg = JSON.parse(new TextDecoder().decode(files['config.json']));
  return createQwen2Cpu(dimsFromConfig(cfg), weightSource(await loadWeights(files)));
}

/** The fixture, its evaluation ids and a 64 × 256 calibration from the demo's text past the first 40 windows. */
export async function fixtureData() {
  const files = readFolder(FIXTURE);
  const evalTokens = JSON.parse(readFileSync(join(FIXTURE, 'eval.tokens.json'), 'utf8'));
  const demo = demoCalibrationFromEval(readFileSync(join(FIXTURE, 'eval.txt'), 'utf8'), evalTokens);
  if (demo.firstToken < 40 * 256) throw new Error('demo calibration overlaps the evaluated windows');
  const calib = await calibration(sampleCalibration(demo.ids, 64, 256, 0), 'tinystories-260k calib.tokens.json');
  const tokens: number[] = evalTokens.ids;
  return { files, tokens, calib, firstCalibToken: demo.firstToken };
}

/** The outlier model, a 64 × 128 random-id calibration and 8 × 64 random evaluation ids. */
export async function outlierData() {
  const files = await tinyModelFiles(OUTLIER_MODEL);
  const rand = mulberry32(3);
  const calib = await calibration(Array.from({ length: 64 }, () => Array.from({ length: 128 }, () => Math.floor(rand() * 256))), 'random ids');
  const evalRand = mulberry32(99);
  const ids = Array.from({ length: 8 * 64 }, () => Math.floor(evalRand() * 256));
  return { files, ids, calib };
}
