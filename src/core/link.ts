import { InputError } from './errors';
import { DEFAULT_SETTINGS, type QuantSettings } from './settings';

/** The model part of a run's description. Tokens are never part of it. */
export interface RunTarget {
  /** Hub repo id ("Qwen/Qwen2.5-0.5B"), "demo:<name>", or a local name. */
  model: string;
  revision?: string;
  hub?: string;
}

/**
 * The calibration of a GPTQ run, as a link and the CLI carry it. `source` is short:
 * `demo` (the demo model's built-in calibration), a Hub dataset spec (`wikitext-2-raw-v1`,
 * `org/name:config/split`), or `file:<name>` for a file given locally — its bytes cannot travel
 * in a link, so whoever opens it must give the same file again.
 */
export interface CalibrationSpec {
  source: string;
  /** Samples × tokens per sample drawn from the source (a calib.json's own samples are used as they are). */
  samples: number;
  seqlen: number;
  /** Seed of the sample offsets. */
  seed: number;
}

/** The seed workflow's defaults (create_simple_calib.py): 128 samples × 512 tokens, seed 0. */
export const DEFAULT_CALIBRATION: Readonly<Omit<CalibrationSpec, 'source'>> = Object.freeze({ samples: 128, seqlen: 512, seed: 0 });
export const CALIBRATION_DEMO = 'demo';
export const CALIBRATION_WIKITEXT2 = 'wikitext-2-raw-v1';

/** `file:<name>` → the name; otherwise undefined. */
export function calibrationFileName(source: string): string | undefined {
  return source.startsWith('file:') ? source.slice(5) : undefined;
}

/** Validate a calibration spec from untrusted input (URL parameters, CLI flags); missing counts take the defaults. */
export function parseCalibrationSpec(raw: { source?: unknown; samples?: unknown; seqlen?: unknown; seed?: unknown }): CalibrationSpec {
  const count = (key: string, v: unknown, fallback: number, max: number): number => {
    if (v === undefined) return fallback;
    const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : typeof v === 'number' ? v : NaN;
    if (!Number.isInteger(n) || n < 1 || n > max) throw new InputError(`calibration ${key}: got ${JSON.stringify(v)}; expected an integer from 1 to ${max}`);
    return n;
  };
  const source = typeof raw.source === 'string' ? raw.source.trim() : '';
  if (!source || /[\n\r]/.test(source)) throw new InputError(`calibration source: got ${JSON.stringify(raw.source)}; expected demo, a Hub dataset such as ${CALIBRATION_WIKITEXT2}, or file:<name>`);
  const seed = raw.seed === undefined ? DEFAULT_CALIBRATION.seed : Number(raw.seed);
  if (typeof raw.seed === 'boolean' || raw.seed === '' || !Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new InputError(`calibration seed: got ${JSON.stringify(raw.seed)}; expected an integer from 0 to 4294967295`);
  }
  return {
    source,
    samples: count('samples', raw.samples, DEFAULT_CALIBRATION.samples, 65_536),
    seqlen: count('seqlen', raw.seqlen, DEFAULT_CALIBRATION.seqlen, 32_768),
    seed,
  };
}

/**
 * Whether a run with these settings uses calibration at all: GPTQ (4 or 8 bits), or a W8 budget
 * at 4 bits (the sensitivity ranking; at 8 bits every projection already has 8 bits, and the
 * pipeline ignores the budget there). Bits 16 quantizes nothing.
 */
export function usesCalibration(s: QuantSettings): boolean {
  if (s.bits === 16) return false;
  return s.method === 'gptq' || (s.bits === 4 && s.w8Budget > 0);
}

/** A W8 budget as the link and the CLI write it: a fraction with at most 6 significant digits ("0.1"). */
export function budgetText(f: number): string {
  return String(Number(f.toPrecision(6)));
}

/**
 * Query string that reproduces a run in the app (the "shareable link"), e.g.
 * `?model=Qwen%2FQwen2.5-0.5B&revision=…&bits=4&scheme=sp&…`. Every setting is written,
 * defaults included, so a link keeps meaning the same bytes if defaults ever change. GPTQ's
 * settings are written for GPTQ runs only (RTN's bytes do not depend on them); the calibration
 * whenever the run uses it (GPTQ, or a W8 budget at 4 bits). The codebook, W8 budget and bits
 * overrides came later: they are written when not the default (a link without them meant, and
 * still means, the integer grid, no budget, no overrides), and only when something is quantized.
 */
export function runQuery(target: RunTarget, s: QuantSettings, calib?: CalibrationSpec | null): string {
  const p = new URLSearchParams();
  p.set('model', target.model);
  if (target.revision) p.set('revision', target.revision);
  if (target.hub) p.set('hub', target.hub);
  p.set('bits', String(s.bits));
  p.set('scheme', s.scheme);
  p.set('clip', s.clip);
  p.set('rotation', s.rotation);
  p.set('block', String(s.blockSize));
  p.set('seed', String(s.seed));
  p.set('embed', s.quantizeEmbeddings ? '1' : '0');
  p.set('dtype', s.dtype);
  p.set('method', s.method);
  // Written only when fitted, so the links (and model cards) of existing runs keep their bytes.
  if (s.inputScales === 'fitted' && s.bits !== 16) p.set('inscales', 'fitted');
  if (s.method === 'gptq') {
    p.set('actorder', s.actOrder ? '1' : '0');
    p.set('damp', String(s.damp));
  }
  if (s.bits !== 16) {
    if (s.codebook !== 'uniform') p.set('codebook', s.codebook);
    if (s.w8Budget > 0) p.set('w8budget', budgetText(s.w8Budget));
    if (s.bitsOverride) p.set('bitsoverride', s.bitsOverride);
  }
  if (calib && usesCalibration(s)) {
    p.set('calib', calib.source);
    p.set('csamples', String(calib.samples));
    p.set('cseqlen', String(calib.seqlen));
    p.set('cseed', String(calib.seed));
  }
  return `?${p.toString()}`;
}

/** Query key → setting, as runQuery writes them. */
export const LINK_SETTING_KEYS: readonly (readonly [string, keyof QuantSettings])[] = [
  ['bits', 'bits'], ['scheme', 'scheme'], ['clip', 'clip'], ['rotation', 'rotation'], ['block', 'blockSize'],
  ['seed', 'seed'], ['embed', 'quantizeEmbeddings'], ['dtype', 'dtype'], ['method', 'method'], ['actorder', 'actOrder'], ['damp', 'damp'],
  ['codebook', 'codebook'], ['w8budget', 'w8Budget'], ['bitsoverride', 'bitsOverride'], ['inscales', 'inputScales'],
];

/** The query key a setting travels under in a link ("w8Budget" → "w8budget"). */
export function linkKeyOf(key: keyof QuantSettings): string {
  return LINK_SETTING_KEYS.find(([, k]) => k === key)?.[0] ?? key;
}

/** The calibration part of a parsed link (raw strings; parseCalibrationSpec validates). */
export interface LinkCalibration {
  source?: string;
  samples?: string;
  seqlen?: string;
  seed?: string;
}

/** Inverse of runQuery (unknown keys ignored; values validated later by parseSettings / parseCalibrationSpec). */
export function parseRunQuery(query: string): {
  target: Partial<RunTarget>;
  settings: Partial<Record<keyof QuantSettings, string>>;
  calibration: LinkCalibration;
  autorun: boolean;
} {
  const p = new URLSearchParams(query);
  const get = (k: string): string | undefined => p.get(k) ?? undefined;
  const settings: Partial<Record<keyof QuantSettings, string>> = {};
  for (const [q, k] of LINK_SETTING_KEYS) { const v = get(q); if (v !== undefined) settings[k] = v; }
  const calibration: LinkCalibration = {};
  const cmap: [string, keyof LinkCalibration][] = [['calib', 'source'], ['csamples', 'samples'], ['cseqlen', 'seqlen'], ['cseed', 'seed']];
  for (const [q, k] of cmap) { const v = get(q); if (v !== undefined) calibration[k] = v; }
  return { target: { model: get('model'), revision: get('revision'), hub: get('hub') }, settings, calibration, autorun: get('autorun') === '1' };
}

/** The CLI's `--calib` argument for a calibration source: a dropped file becomes a placeholder path. */
export function cliCalibArg(source: string): string {
  const file = calibrationFileName(source);
  return file !== undefined ? `<path to ${file}>` : source;
}

/** A shell word: as it is when it holds only safe characters, else in single quotes. */
function shellQuote(v: string): string {
  return /^[\w.,=\/:@%+-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`;
}

/** The equivalent CLI call, for the model card and the app's result panel. */
export function cliCommand(modelArg: string, s: QuantSettings, revision?: string, calib?: CalibrationSpec | null): string {
  const parts = ['npm run quantize --', `--model ${modelArg}`];
  if (revision) parts.push(`--revision ${revision}`);
  parts.push('--out <dir>', `--bits ${s.bits}`, `--scheme ${s.scheme}`, `--rotation ${s.rotation}`);
  if (s.rotation === 'block') parts.push(`--block-size ${s.blockSize}`);
  parts.push(`--clip ${s.clip}`, `--seed ${s.seed}`, `--quantize-embeddings ${s.quantizeEmbeddings}`, `--dtype ${s.dtype}`);
  if (s.inputScales === 'fitted' && s.bits !== 16) parts.push('--input-scales fitted');
  const calibFlags = calib && usesCalibration(s)
    ? [`--calib ${cliCalibArg(calib.source)}`, `--calib-samples ${calib.samples}`, `--calib-seqlen ${calib.seqlen}`, `--calib-seed ${calib.seed}`]
    : [];
  if (s.method === 'gptq') {
    parts.push('--method gptq', ...calibFlags, `--act-order ${s.actOrder}`, `--damp ${s.damp}`);
  } else if (calibFlags.length) {
    // The CLI takes --calib to mean GPTQ unless the method is named.
    parts.push('--method rtn', ...calibFlags);
  }
  if (s.bits !== 16) {
    if (s.codebook !== 'uniform') parts.push(`--codebook ${s.codebook}`);
    if (s.w8Budget > 0) parts.push(`--w8-budget ${budgetText(s.w8Budget)}`);
    if (s.bitsOverride) parts.push(`--bits-override ${shellQuote(s.bitsOverride)}`);
  }
  return parts.join(' ');
}

export { DEFAULT_SETTINGS };
