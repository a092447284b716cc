/**
 * The calibration set of calibration-based quantization (GPTQ): N samples × L tokens taken
 * from a text the way the seed's workflow does (ANEMLL's create_simple_calib.py, after GPTQ's
 * get_wikitext2): join the source, tokenize it once with the model's tokenizer, then cut N
 * windows of L tokens at seeded random start offsets. Or a seed-format `calib.json`
 * (`[{"input_ids": [...], "text": "..."}]`), whose ids are used as they are.
 *
 * Every check (shape, vocabulary, length) runs here, before any weight is touched, and fails
 * with an InputError naming the source. Shared by the CLI (`npm run calib`, `--calib`) and the app.
 */
import { InputError, throwIfAborted } from '../core/errors';
import { mulberry32 } from '../demo/tiny-qwen2';
import { calibrationText, checkIds, describeCalibration, type CalibrationSource } from './calibration';
import type { ModelSource } from '../core/ports';
import { loadTokenizer, type TextTokenizer } from './tokenizer';
import { WIKITEXT2_RAW, WIKITEXT_REPO, type WikiTextOptions } from './wikitext';

/** The seed's defaults (create_simple_calib.py: 128 samples of 512 tokens). */
export const CALIB_NSAMPLES = 128;
export const CALIB_SEQLEN = 512;
export const CALIB_SEED = 0;
export const CALIB_NSAMPLES_MAX = 65_536;
export const CALIB_SEQLEN_MIN = 1;
export const CALIB_SEQLEN_MAX = 32_768;

/**
 * Where calibration tokens come from. The calibration.ts sources (the WikiText-2 split defaults
 * to `train` here — calibration never samples the test split the quality check reports on),
 * plus a seed-format calib.json.
 */
export type CalibrationSetSource =
  | CalibrationSource
  | { kind: 'calib-json'; json: string; name?: string };

export interface CalibrationSetOptions {
  /** The model's vocabulary size: every id must be below it. */
  vocabSize: number;
  /** Needed for text sources (not for token ids or calib.json). */
  tokenizer?: TextTokenizer;
  /** Samples to draw (sampled sources). Default 128. */
  nsamples?: number;
  /** Tokens per sample (sampled sources). Default 512. */
  seqlen?: number;
  /** Seed of the start offsets. Default 0. */
  seed?: number;
  /** The model's max_position_embeddings: a longer sample is an input error. */
  maxPositions?: number;
  signal?: AbortSignal;
}

export interface CalibrationSet {
  /** The token ids, sample by sample. */
  samples: number[][];
  nsamples: number;
  /** Tokens per sample (for calib.json: the longest sample; see `uniform`). */
  seqlen: number;
  /** Whether every sample has `seqlen` tokens. */
  uniform: boolean;
  /** Human-readable source, e.g. "WikiText-2 raw train" or "calib.json". */
  source: string;
  /** 'sampled' = windows drawn from a token stream; 'given' = calib.json samples as they are. */
  origin: 'sampled' | 'given';
  /** Seed of the start offsets (sampled sets). */
  seed?: number;
  /** Tokens in the stream the windows were drawn from (sampled sets). */
  streamTokens?: number;
  /** sha256 (hex) of the ids as little-endian int32, sample after sample (`calibIdsSha256`). */
  sha256: string;
}

function checkCount(v: number, what: string, min: number, max: number): number {
  if (!Number.isInteger(v) || v < min || v > max) throw new InputError(`${what} ${v}: expected an integer from ${min} to ${max}`);
  return v;
}

/** Every id an integer in [0, vocabSize). */
export function checkVocab(ids: ArrayLike<number>, vocabSize: number, what: string): void {
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new InputError(`${what}: token id ${id} at position ${i} is outside the model's vocabulary (0 to ${vocabSize - 1}); was it made with another tokenizer?`);
    }
  }
}

/**
 * Start offsets of `nsamples` windows of `seqlen` tokens in a stream of `n` tokens: offset_k =
 * floor(u_k · (n − seqlen + 1)) with u_k the k-th draw of mulberry32(seed) — GPTQ's
 * `random.randint(0, n − seqlen − 1)` with a PRNG that is the same in every language.
 * Windows may overlap (as in the seed); a stream shorter than one window is an input error.
 */
export function calibrationOffsets(n: number, nsamples: number, seqlen: number, seed: number, what = 'the calibration text'): number[] {
  if (n < seqlen) {
    throw new InputError(`${what} has ${n} tokens, fewer than one calibration sample of ${seqlen}; give a longer text or a shorter --seqlen`);
  }
  const rand = mulberry32(seed);
  const span = n - seqlen + 1;
  return Array.from({ length: nsamples }, () => Math.floor(rand() * span));
}

/** `nsamples` windows of `seqlen` tokens of `ids` (see calibrationOffsets). */
export function sampleCalibration(ids: ArrayLike<number>, nsamples: number, seqlen: number, seed: number, what?: string): number[][] {
  return calibrationOffsets(ids.length, nsamples, seqlen, seed, what).map((o) => Array.from({ length: seqlen }, (_, i) => ids[o + i]));
}

/** Parses a seed-format calib.json: a non-empty array of `{"input_ids": [int, …], "text"?: string}`. */
export function parseCalibJson(json: string, what = 'calib.json'): number[][] {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch (e) {
    throw new InputError(`${what}: not valid JSON (${(e as Error).message})`, { file: what });
  }
  const shape = 'expected a non-empty array of {"input_ids": [...], "text": "..."} objects (the format of create_simple_calib.py)';
  if (!Array.isArray(v) || v.length === 0) throw new InputError(`${what}: ${shape}`, { file: what });
  return v.map((s, k) => {
    const ids = s && typeof s === 'object' && !Array.isArray(s) ? (s as { input_ids?: unknown }).input_ids : undefined;
    if (!Array.isArray(ids) || ids.length === 0) throw new InputError(`${what}: sample ${k} has no non-empty "input_ids" array; ${shape}`, { file: what });
    // A nested [[...]] (a batch dimension kept from return_tensors) is the same sample.
    const flat = ids.length === 1 && Array.isArray(ids[0]) ? (ids[0] as unknown[]) : ids;
    return checkIds(flat, `${what}: sample ${k} "input_ids"`);
  });
}

/** sha256 (hex) of the samples' ids as little-endian int32, one sample after another. */
export async function calibIdsSha256(samples: number[][]): Promise<string> {
  const total = samples.reduce((n, s) => n + s.length, 0);
  const bytes = new Uint8Array(total * 4);
  const view = new DataView(bytes.buffer);
  let o = 0;
  for (const s of samples) for (const id of s) { view.setInt32(o, id, true); o += 4; }
  const digest = await globalThis.crypto.subtle.digest('SHA-256', bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

export function describeCalibrationSet(src: CalibrationSetSource): string {
  if (src.kind === 'calib-json') return src.name ?? 'calib.json';
  if (src.kind === 'wikitext2') {
    const split = src.split ?? 'train';
    const repo = src.repo ?? WIKITEXT_REPO;
    const config = src.config ?? WIKITEXT2_RAW;
    return repo === WIKITEXT_REPO && config === WIKITEXT2_RAW ? `WikiText-2 raw ${split}` : `${repo} ${config} ${split}`;
  }
  return describeCalibration(src);
}

/**
 * Builds the calibration set of a source, checking everything first: the JSON shape, the
 * vocabulary, the sample count and length against the stream and the model's context.
 */
export async function buildCalibrationSet(src: CalibrationSetSource, opts: CalibrationSetOptions): Promise<CalibrationSet> {
  const { vocabSize, tokenizer, signal } = opts;
  const source = describeCalibrationSet(src);
  if (src.kind === 'calib-json') {
    const samples = parseCalibJson(src.json, source);
    samples.forEach((s, k) => checkVocab(s, vocabSize, `${source}: sample ${k}`));
    const seqlen = Math.max(...samples.map((s) => s.length));
    if (opts.maxPositions !== undefined && seqlen > opts.maxPositions) {
      throw new InputError(`${source}: a sample has ${seqlen} tokens, more than the model's max_position_embeddings ${opts.maxPositions}`, { file: source });
    }
    return {
      samples,
      nsamples: samples.length,
      seqlen,
      uniform: samples.every((s) => s.length === seqlen),
      source,
      origin: 'given',
      sha256: await calibIdsSha256(samples),
    };
  }
  const nsamples = checkCount(opts.nsamples ?? CALIB_NSAMPLES, 'calibration samples', 1, CALIB_NSAMPLES_MAX);
  const seqlen = checkCount(opts.seqlen ?? CALIB_SEQLEN, 'calibration sample length', CALIB_SEQLEN_MIN, CALIB_SEQLEN_MAX);
  if (opts.maxPositions !== undefined && seqlen > opts.maxPositions) {
    throw new InputError(`calibration sample length ${seqlen} exceeds the model's max_position_embeddings ${opts.maxPositions}`);
  }
  const seed = opts.seed ?? CALIB_SEED;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new InputError(`calibration seed ${seed}: expected an integer from 0 to 4294967295`);
  let ids: number[];
  if (src.kind === 'tokens') {
    ids = checkIds(src.ids, source);
  } else {
    if (!tokenizer) throw new InputError(`no tokenizer.json in the model: cannot tokenize the calibration text (${source}); give a calib.json of token ids instead`);
    const textSrc = src.kind === 'wikitext2' ? { ...src, split: src.split ?? 'train' } : src;
    const text = await calibrationText(textSrc);
    throwIfAborted(signal);
    ids = tokenizer.encode(text);
  }
  checkVocab(ids, vocabSize, source);
  const samples = sampleCalibration(ids, nsamples, seqlen, seed, source);
  return { samples, nsamples, seqlen, uniform: true, source, origin: 'sampled', seed, streamTokens: ids.length, sha256: await calibIdsSha256(samples) };
}

/**
 * The seed's calib.json: `[{"input_ids": [...], "text": "..."}]`, one sample per line (the
 * text is the tokenizer's decoding, special tokens kept; ids are what counts).
 */
export function serializeCalibJson(samples: number[][], tokenizer?: TextTokenizer): string {
  const lines = samples.map((s) => {
    const entry: { input_ids: number[]; text?: string } = { input_ids: s };
    if (tokenizer) entry.text = tokenizer.decode(s, { skipSpecial: false });
    return JSON.stringify(entry);
  });
  return `[\n${lines.join(',\n')}\n]\n`;
}

/**
 * A Hub text dataset spec: `[org/name:]config[/split]`, e.g. `wikitext-2-raw-v1` (=
 * Salesforce/wikitext, config wikitext-2-raw-v1, split train) or
 * `Salesforce/wikitext:wikitext-103-raw-v1/validation`. Reads `<config>/<split>-00000-of-00001.parquet`'s
 * `text` column.
 */
export function parseDatasetSpec(spec: string): { kind: 'wikitext2' } & WikiTextOptions {
  const m = /^(?:([\w.-]+\/[\w.-]+):)?([\w.-]+)(?:\/(train|validation|test))?$/.exec(spec.trim());
  if (!m) {
    throw new InputError(`dataset ${spec}: expected [org/name:]config[/split], e.g. ${WIKITEXT2_RAW} or ${WIKITEXT_REPO}:${WIKITEXT2_RAW}/train`);
  }
  return { kind: 'wikitext2', repo: m[1] ?? WIKITEXT_REPO, config: m[2], split: (m[3] as WikiTextOptions['split']) ?? 'train' };
}

/** What calibration needs to know of a model: its vocabulary, context and tokenizer. */
export interface CalibrationModelInfo {
  vocabSize: number;
  maxPositions?: number;
  /** Undefined when the model has no tokenizer.json (then only token-id sources work). */
  tokenizer?: TextTokenizer;
}

async function readSourceText(source: ModelSource, files: string[], path: string, signal?: AbortSignal): Promise<string | undefined> {
  if (!files.includes(path)) return undefined;
  throwIfAborted(signal);
  const f = await source.open(path);
  return new TextDecoder().decode(f.size === 0 ? new Uint8Array(0) : await f.read(0, f.size, signal));
}

/** Reads config.json (vocab_size, max_position_embeddings) and the tokenizer files of a model; no weights. */
export async function readCalibrationModelInfo(source: ModelSource, signal?: AbortSignal): Promise<CalibrationModelInfo> {
  const files = await source.listFiles();
  const configText = await readSourceText(source, files, 'config.json', signal);
  if (configText === undefined) throw new InputError(`no config.json in ${source.label}`, { file: 'config.json' });
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(configText) as Record<string, unknown>;
  } catch (e) {
    throw new InputError(`config.json of ${source.label} is not valid JSON (${(e as Error).message})`, { file: 'config.json' });
  }
  const vocabSize = config?.vocab_size;
  if (typeof vocabSize !== 'number' || !Number.isInteger(vocabSize) || vocabSize < 1) {
    throw new InputError(`config.json of ${source.label}: "vocab_size" missing or not a positive integer`, { file: 'config.json' });
  }
  const mp = config.max_position_embeddings;
  const tokenizerJson = await readSourceText(source, files, 'tokenizer.json', signal);
  let tokenizer: TextTokenizer | undefined;
  if (tokenizerJson !== undefined) {
    const tokenizerConfig = await readSourceText(source, files, 'tokenizer_config.json', signal);
    try {
      tokenizer = loadTokenizer(tokenizerJson, tokenizerConfig);
    } catch (e) {
      throw new InputError(`tokenizer.json of ${source.label} could not be loaded: ${(e as Error).message}`, { file: 'tokenizer.json' });
    }
  }
  return { vocabSize, maxPositions: typeof mp === 'number' && Number.isInteger(mp) && mp > 0 ? mp : undefined, tokenizer };
}
