/**
 * Calibration for a GPTQ run, as the CLI and the app's worker both build it: the source a
 * CalibrationSpec names (a demo's built-in files, a Hub dataset, a given file), sampled with the
 * model's tokenizer (src/eval/calibration-set.ts), and the forward pass the backend calls for.
 * Everything here runs before any weight is read, so bad calibration input fails first.
 */
import { InputError } from '../core/errors';
import { CALIBRATION_DEMO, calibrationFileName, type CalibrationSpec } from '../core/link';
import type { PipelineCalibration } from '../core/pipeline/calibration';
import type { Backend, CalibrationForwardFactory, ModelSource } from '../core/ports';
import { cpuCalibrationForward } from './calibration-forward';
import { calibrationForwardFor } from './calibration-forward-webgpu';
import {
  buildCalibrationSet, parseDatasetSpec, readCalibrationModelInfo, type CalibrationSet, type CalibrationSetSource,
} from './calibration-set';

/** The files `npm run demo` writes for calibration, in the order they are preferred (the model's own ids first). */
export const DEMO_CALIBRATION_FILES = ['calib.tokens.json', 'calib.json', 'calib.txt'] as const;

/**
 * A calibration file's text as a source: `.json` is a seed-format calib.json or a token stream
 * `{"ids": [...]}` (like the demo's calib.tokens.json); anything else is UTF-8 text.
 */
export function calibSourceFromFileText(text: string, name: string): CalibrationSetSource {
  if (!/\.json$/i.test(name)) return { kind: 'text', text, name };
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new InputError(`calibration file ${name}: not valid JSON (${(e as Error).message})`, { file: name });
  }
  if (v && typeof v === 'object' && !Array.isArray(v) && 'ids' in v) {
    const ids = (v as { ids: unknown }).ids;
    if (!Array.isArray(ids)) throw new InputError(`calibration file ${name}: "ids" must be an array of token ids`, { file: name });
    return { kind: 'tokens', ids: ids as number[], name };
  }
  return { kind: 'calib-json', json: text, name };
}

/**
 * The built-in calibration of a demo model folder: the first of `candidates` (default
 * DEMO_CALIBRATION_FILES) that the folder has. Named "<model> <file>" so the CLI on the folder
 * and the app on the demo record the same source.
 */
export async function demoCalibrationSource(source: ModelSource, modelName: string, candidates: readonly string[] = DEMO_CALIBRATION_FILES, signal?: AbortSignal): Promise<CalibrationSetSource> {
  const files = new Set(await source.listFiles());
  const file = candidates.find((f) => files.has(f));
  if (!file) {
    throw new InputError(`calibration "demo": ${modelName} has no built-in calibration (none of ${DEMO_CALIBRATION_FILES.join(', ')}); give a calib.json, a text file or a Hub dataset instead`);
  }
  const f = await source.open(file);
  const text = new TextDecoder().decode(f.size === 0 ? new Uint8Array(0) : await f.read(0, f.size, signal));
  const named = calibSourceFromFileText(text, file);
  return named.kind === 'wikitext2' ? named : { ...named, name: `${modelName} ${file}` };
}

export { calibrationForwardFor };

export interface CalibrationInputs {
  /** The model (config.json and tokenizer files are read; no weights). */
  model: ModelSource;
  /** Its name as the run records it (target.model), for demo sources. */
  modelName: string;
  spec: CalibrationSpec;
  /** The bytes behind a `file:<name>` spec (a given or dropped file), already read. */
  file?: { text: string; name: string };
  /** Demo sources: the files to look for (a demo index's quantCalibration), in order. */
  demoFiles?: readonly string[];
  hubUrl?: string;
  accessToken?: string;
  signal?: AbortSignal;
}

/** The source a spec names. */
export async function calibrationSetSource(c: CalibrationInputs): Promise<CalibrationSetSource> {
  const fileName = calibrationFileName(c.spec.source);
  if (fileName !== undefined) {
    if (!c.file) throw new InputError(`calibration file ${fileName}: it was given elsewhere and cannot travel in a link; drop or pick the same file again`);
    return calibSourceFromFileText(c.file.text, c.file.name);
  }
  if (c.spec.source === CALIBRATION_DEMO) return demoCalibrationSource(c.model, c.modelName, c.demoFiles, c.signal);
  return { ...parseDatasetSpec(c.spec.source), hubUrl: c.hubUrl, accessToken: c.accessToken, signal: c.signal };
}

/** Builds the calibration set with the model's tokenizer and wraps it for runPipeline. */
export async function buildPipelineCalibration(c: CalibrationInputs, backend: Backend): Promise<{ calibration: PipelineCalibration; set: CalibrationSet }> {
  return pipelineCalibrationFrom(await calibrationSetSource(c), c.model, c.spec, backend, c.signal);
}

/** The same from a source already opened (the CLI reads a --calib file before the model). */
export async function pipelineCalibrationFrom(
  src: CalibrationSetSource, model: ModelSource, spec: CalibrationSpec, backend: Backend | undefined, signal?: AbortSignal,
): Promise<{ calibration: PipelineCalibration; set: CalibrationSet }> {
  const info = await readCalibrationModelInfo(model, signal);
  const set = await buildCalibrationSet(src, { ...info, nsamples: spec.samples, seqlen: spec.seqlen, seed: spec.seed, signal });
  return {
    set,
    calibration: { samples: set.samples, forward: backend ? calibrationForwardFor(backend) : cpuCalibrationForward, source: set.source, sha256: set.sha256, spec },
  };
}

