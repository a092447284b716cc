/**
 * Reading a model or an ANEMLL SP bundle from a ModelSource for evaluation: config, tokenizer
 * files and f32 weights. A bundle is read with the SP loader's semantics y = weight·x + bias:
 * the stored (dequantized) weight and bias are used as they are, so the scale/codebook keys
 * are not needed and are skipped.
 */
import { InputError, throwIfAborted } from '../core/errors';
import { openSafetensorsModel, type SafetensorsModel } from '../core/safetensors/model';
import { readTensorF32 } from '../core/safetensors/read-tensor';
import type { ModelSource } from '../core/ports';
import type { AsyncWeightSource, WeightSource } from './forward';
import { dimsFromConfig, type Qwen2Dims } from '../core/qwen2/config';

/** Keys the SP format adds beside each projection; the forward pass does not read them. */
const SP_EXTRA = /\.(input_scales|output_scales|codebook)$/;

export interface EvalModel {
  label: string;
  dims: Qwen2Dims;
  config: Record<string, unknown>;
  /** generation_config.json, when present. */
  generationConfig?: Record<string, unknown>;
  /** tokenizer.json / tokenizer_config.json text, when present. */
  tokenizerJson?: string;
  tokenizerConfig?: string;
  /** Tensor names the forward pass may read (scale/codebook keys excluded). */
  tensorNames: string[];
  /** Bytes of those tensors as f32. */
  f32Bytes: number;
  /** One tensor as f32, read from the source on each call. */
  readTensor(name: string, signal?: AbortSignal): Promise<Float32Array | undefined>;
}

async function readText(source: ModelSource, files: Set<string>, path: string, signal?: AbortSignal): Promise<string | undefined> {
  if (!files.has(path)) return undefined;
  throwIfAborted(signal);
  const src = await source.open(path);
  const bytes = src.size === 0 ? new Uint8Array(0) : await src.read(0, src.size, signal);
  return new TextDecoder().decode(bytes);
}

function parseJson(text: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new InputError(`${what} is not valid JSON (${(e as Error).message})`, { file: what });
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new InputError(`${what} must be a JSON object`, { file: what });
  return v as Record<string, unknown>;
}

/** Opens config, tokenizer files and safetensors headers; tensors are read later, on demand. */
export async function openEvalModel(source: ModelSource, signal?: AbortSignal): Promise<EvalModel> {
  const files = new Set(await source.listFiles());
  const configText = await readText(source, files, 'config.json', signal);
  if (configText === undefined) throw new InputError(`no config.json in ${source.label}`, { file: 'config.json' });
  const config = parseJson(configText, `config.json of ${source.label}`);
  if (config.model_type !== undefined && config.model_type !== 'qwen2') {
    throw new InputError(`config.json of ${source.label}: model_type ${JSON.stringify(config.model_type)}; expected "qwen2"`, { file: 'config.json' });
  }
  let dims: Qwen2Dims;
  try {
    dims = dimsFromConfig(config);
  } catch (e) {
    throw new InputError(`${(e as Error).message} (${source.label})`, { file: 'config.json' });
  }
  const gen = await readText(source, files, 'generation_config.json', signal);
  const model: SafetensorsModel = await openSafetensorsModel(source, signal);
  const tensorNames = [...model.tensors.keys()].filter((n) => !SP_EXTRA.test(n));
  let f32Bytes = 0;
  for (const n of tensorNames) {
    const info = model.tensors.get(n)!.info;
    f32Bytes += info.shape.reduce((a, b) => a * b, 1) * 4;
  }
  return {
    label: source.label,
    dims,
    config,
    generationConfig: gen === undefined ? undefined : parseJson(gen, `generation_config.json of ${source.label}`),
    tokenizerJson: await readText(source, files, 'tokenizer.json', signal),
    tokenizerConfig: await readText(source, files, 'tokenizer_config.json', signal),
    tensorNames,
    f32Bytes,
    async readTensor(name, sig) {
      if (SP_EXTRA.test(name)) return undefined;
      const t = model.tensors.get(name);
      if (!t) return undefined;
      return readTensorF32(model.files.get(t.file)!.source, t.info, sig ?? signal);
    },
  };
}

/** Every tensor in memory (the CPU forward needs synchronous access). */
export async function loadAllWeights(
  m: EvalModel,
  opts: { signal?: AbortSignal; onTensor?: (done: number, total: number) => void } = {},
): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  let done = 0;
  for (const n of m.tensorNames) {
    throwIfAborted(opts.signal);
    out.set(n, (await m.readTensor(n, opts.signal))!);
    opts.onTensor?.(++done, m.tensorNames.length);
  }
  return out;
}

export function mapWeights(m: Map<string, Float32Array>): WeightSource & AsyncWeightSource {
  return { get: (name: string) => m.get(name) };
}

/** Weights read from the source on each request: for a streamed GPU model, nothing stays in memory. */
export function lazyWeights(m: EvalModel, signal?: AbortSignal): AsyncWeightSource {
  const names = new Set(m.tensorNames);
  return { get: (name: string) => m.readTensor(name, signal), has: (name: string) => names.has(name) };
}

/** EOS ids from generation_config.json (`eos_token_id` may be a number or a list), else config.json. */
export function eosIds(m: EvalModel): number[] {
  const raw = m.generationConfig?.eos_token_id ?? m.config.eos_token_id;
  const list = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
  return list.filter((x): x is number => typeof x === 'number' && Number.isInteger(x));
}
