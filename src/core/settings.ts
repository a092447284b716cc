import { InputError } from './errors';
import { parseBitsOverride, parseW8Budget } from './quant/mixed-precision';

export type Bits = 4 | 8 | 16;
export type Scheme = 'per_tensor' | 'sp';
export type Clip = 'absmax' | 'mse';
export type RotationMode = 'full' | 'block' | 'none';
export type OutputDtype = 'f16' | 'f32';
export type Method = 'rtn' | 'gptq';
export type CodebookKind = 'uniform' | 'learned';
/** The projections' `input_scales`: one value per tensor, or a scale per input column fitted to the tensor. */
export type InputScalesKind = 'uniform' | 'fitted';

/** Everything that determines the bytes of a bundle (with the input model). */
export interface QuantSettings {
  bits: Bits;
  scheme: Scheme;
  clip: Clip;
  rotation: RotationMode;
  /** Used by rotation 'block': a power of two dividing the hidden size. */
  blockSize: number;
  seed: number;
  quantizeEmbeddings: boolean;
  dtype: OutputDtype;
  /** Round-to-nearest, or GPTQ on the rotated model with calibration data (the projections only). */
  method: Method;
  /** GPTQ: quantize columns in descending diag(H) order. */
  actOrder: boolean;
  /** GPTQ: dampening, as a fraction of the mean diagonal of H. */
  damp: number;
  /** The projections' `.codebook`: the integer grid, or 2^b entries fitted to each tensor (a learned LUT). */
  codebook: CodebookKind;
  /** Fraction of the quantized projection parameters kept at 8 bits, the most sensitive on calibration data first. */
  w8Budget: number;
  /** Explicit per-tensor bits, e.g. `down_proj=8,layers.0.*=8` ('' = none); they win over the budget. */
  bitsOverride: string;
  /**
   * 'fitted': a scale per input column, fitted with the row scales as a rank-1 scale (SPEC §3
   * "Where the scales go"; src/core/quant/scales.ts fitInputScales). Off by default: see README.
   */
  inputScales: InputScalesKind;
}

/** SPEC §3 defaults; the app and the CLI share them so a link and a CLI call give the same bytes. */
export const DEFAULT_SETTINGS: Readonly<QuantSettings> = Object.freeze({
  bits: 4,
  scheme: 'sp',
  clip: 'mse',
  rotation: 'full',
  blockSize: 64,
  seed: 0,
  quantizeEmbeddings: true,
  dtype: 'f16',
  method: 'rtn',
  actOrder: true,
  damp: 0.01,
  codebook: 'uniform',
  w8Budget: 0,
  bitsOverride: '',
  inputScales: 'uniform',
});

/** The block sizes offered before the model is known. */
export const BLOCK_SIZES = [16, 32, 64, 128, 256] as const;

/** Largest block size offered (a block as wide as a 4096-wide residual is rotation 'full'). */
export const MAX_BLOCK_SIZE = 4096;

/** Block sizes rotation 'block' accepts for a hidden size: every power of two from 2 that divides it, smallest first. */
export function validBlockSizes(hidden: number): number[] {
  const out: number[] = [];
  for (let b = 2; b <= Math.min(hidden, MAX_BLOCK_SIZE); b *= 2) if (hidden % b === 0) out.push(b);
  return out;
}

/** Validate and normalise settings from untrusted input (CLI flags, URL parameters). */
export function parseSettings(raw: Partial<Record<keyof QuantSettings, unknown>>): QuantSettings {
  const s: QuantSettings = { ...DEFAULT_SETTINGS };
  const bad = (key: string, value: unknown, expected: string): never => {
    throw new InputError(`setting ${key}: got ${JSON.stringify(value)}; expected ${expected}`);
  };
  if (raw.bits !== undefined) {
    const b = Number(raw.bits);
    if (b !== 4 && b !== 8 && b !== 16) bad('bits', raw.bits, '4, 8 or 16');
    s.bits = b as Bits;
  }
  if (raw.scheme !== undefined) {
    if (raw.scheme !== 'per_tensor' && raw.scheme !== 'sp') bad('scheme', raw.scheme, 'per_tensor or sp');
    s.scheme = raw.scheme as Scheme;
  }
  if (raw.clip !== undefined) {
    if (raw.clip !== 'absmax' && raw.clip !== 'mse') bad('clip', raw.clip, 'absmax or mse');
    s.clip = raw.clip as Clip;
  }
  if (raw.rotation !== undefined) {
    if (raw.rotation !== 'full' && raw.rotation !== 'block' && raw.rotation !== 'none') bad('rotation', raw.rotation, 'full, block or none');
    s.rotation = raw.rotation as RotationMode;
  }
  if (raw.blockSize !== undefined) {
    const b = Number(raw.blockSize);
    if (!Number.isInteger(b) || b < 2 || (b & (b - 1)) !== 0 || b > 65536) bad('block-size', raw.blockSize, 'a power of two such as 16, 32, 64, 128 or 256');
    s.blockSize = b;
  }
  if (raw.seed !== undefined) {
    const v = Number(raw.seed);
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) bad('seed', raw.seed, 'an integer from 0 to 4294967295');
    s.seed = v;
  }
  if (raw.quantizeEmbeddings !== undefined) {
    const v = raw.quantizeEmbeddings;
    if (v === true || v === 'true' || v === '1') s.quantizeEmbeddings = true;
    else if (v === false || v === 'false' || v === '0') s.quantizeEmbeddings = false;
    else bad('quantize-embeddings', v, 'true or false');
  }
  if (raw.dtype !== undefined) {
    if (raw.dtype !== 'f16' && raw.dtype !== 'f32') bad('dtype', raw.dtype, 'f16 or f32');
    s.dtype = raw.dtype as OutputDtype;
  }
  if (raw.method !== undefined) {
    if (raw.method !== 'rtn' && raw.method !== 'gptq') bad('method', raw.method, 'rtn or gptq');
    s.method = raw.method as Method;
  }
  if (raw.actOrder !== undefined) {
    const v = raw.actOrder;
    if (v === true || v === 'true' || v === '1') s.actOrder = true;
    else if (v === false || v === 'false' || v === '0') s.actOrder = false;
    else bad('act-order', v, 'true or false');
  }
  if (raw.codebook !== undefined) {
    if (raw.codebook !== 'uniform' && raw.codebook !== 'learned') bad('codebook', raw.codebook, 'uniform or learned');
    s.codebook = raw.codebook as CodebookKind;
  }
  if (raw.inputScales !== undefined) {
    if (raw.inputScales !== 'uniform' && raw.inputScales !== 'fitted') bad('input-scales', raw.inputScales, 'uniform or fitted');
    s.inputScales = raw.inputScales as InputScalesKind;
  }
  if (raw.w8Budget !== undefined) s.w8Budget = parseW8Budget(raw.w8Budget);
  if (raw.bitsOverride !== undefined) {
    if (typeof raw.bitsOverride !== 'string') bad('bits-override', raw.bitsOverride, "pattern=bits pairs, e.g. 'down_proj=8,layers.0.*=8'");
    const v = (raw.bitsOverride as string).trim();
    if (v !== '') parseBitsOverride(v); // refused here, before any work, with the entry named
    s.bitsOverride = v;
  }
  if (raw.damp !== undefined) {
    const v = Number(raw.damp);
    if (typeof raw.damp === 'boolean' || raw.damp === '' || !Number.isFinite(v) || v < 0 || v > 1) bad('damp', raw.damp, 'a number from 0 to 1 (a fraction of the mean Hessian diagonal, e.g. 0.01)');
    s.damp = v;
  }
  return s;
}

/** One link/URL value that parseSettings refused: the setting, the value as given, why. */
export interface SettingProblem {
  key: keyof QuantSettings;
  value: string;
  message: string;
}

/**
 * Settings from a link, key by key: each valid value is taken, each bad one is reported (and the
 * default kept in its place), so one typo does not throw away the rest of the link.
 */
export function parseSettingsByKey(raw: Partial<Record<keyof QuantSettings, string>>): { settings: QuantSettings; problems: SettingProblem[] } {
  const settings: QuantSettings = { ...DEFAULT_SETTINGS };
  const problems: SettingProblem[] = [];
  for (const key of Object.keys(raw) as (keyof QuantSettings)[]) {
    const value = raw[key];
    if (value === undefined) continue;
    try {
      (settings as unknown as Record<string, unknown>)[key] = parseSettings({ [key]: value })[key];
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      problems.push({ key, value, message: e.message });
    }
  }
  return { settings, problems };
}

/**
 * Plain RTN of the same model, the quality check's baseline: no rotation, round-to-nearest on
 * the integer grid, every tensor at the run's bits (no budget, no overrides, no fitted input scales). Scheme, clip,
 * bits, embeddings and dtype stay the run's, so only "QuaRot and its extras" differ.
 */
export function plainRtnSettings(s: QuantSettings): QuantSettings {
  return {
    ...s, rotation: 'none', method: 'rtn', codebook: 'uniform', w8Budget: 0, bitsOverride: '', inputScales: 'uniform',
    actOrder: DEFAULT_SETTINGS.actOrder, damp: DEFAULT_SETTINGS.damp,
  };
}

/** Whether these settings already are plain RTN (nothing for the quality check to compare with). */
export function isPlainRtn(s: QuantSettings): boolean {
  const p = plainRtnSettings(s);
  if (s.rotation !== 'none') return false;
  return s.bits === 16 || (s.method === p.method && s.codebook === p.codebook && (s.w8Budget === 0 || s.bits !== 4) && s.bitsOverride === p.bitsOverride && s.inputScales === p.inputScales);
}

/** What sets these settings apart from plain RTN, for labels: "rotation full, GPTQ, learned codebook, 10 % at 8 bits, bits overrides". */
export function describeVsPlainRtn(s: QuantSettings): string {
  const parts = [`rotation ${s.rotation}${s.rotation === 'block' ? ` ${s.blockSize}` : ''}`];
  if (s.bits !== 16) {
    if (s.method === 'gptq') parts.push('GPTQ');
    if (s.codebook === 'learned') parts.push('learned codebook');
    if (s.inputScales === 'fitted') parts.push('fitted input scales');
    if (s.bits === 4 && s.w8Budget > 0) parts.push(`${Number((s.w8Budget * 100).toPrecision(4))} % at 8 bits`);
    if (s.bitsOverride) parts.push('bits overrides');
  }
  return parts.join(', ');
}
