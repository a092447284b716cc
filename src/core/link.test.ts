import { describe, expect, it } from 'vitest';
import { cliCommand, parseCalibrationSpec, parseRunQuery, runQuery, usesCalibration, type CalibrationSpec } from './link';
import { DEFAULT_SETTINGS, parseSettings, parseSettingsByKey, type QuantSettings } from './settings';

const custom: QuantSettings = { bits: 8, scheme: 'per_tensor', clip: 'absmax', rotation: 'block', blockSize: 32, seed: 42, quantizeEmbeddings: false, dtype: 'f32', method: 'rtn', actOrder: true, damp: 0.01, codebook: 'uniform', w8Budget: 0, bitsOverride: '', inputScales: 'uniform' };

describe('runQuery / parseRunQuery', () => {
  it('writes every setting, defaults included, and round-trips', () => {
    const q = runQuery({ model: 'Qwen/Qwen2.5-0.5B' }, DEFAULT_SETTINGS);
    expect(q).toBe('?model=Qwen%2FQwen2.5-0.5B&bits=4&scheme=sp&clip=mse&rotation=full&block=64&seed=0&embed=1&dtype=f16&method=rtn');
    const back = parseRunQuery(q);
    expect(back.target).toEqual({ model: 'Qwen/Qwen2.5-0.5B', revision: undefined, hub: undefined });
    expect(parseSettings(back.settings)).toEqual(DEFAULT_SETTINGS);
    expect(back.autorun).toBe(false);
  });

  it('round-trips revision, hub and non-default settings', () => {
    const target = { model: 'org/m', revision: 'abc123', hub: 'http://127.0.0.1:9000' };
    const back = parseRunQuery(runQuery(target, custom));
    expect(back.target).toEqual(target);
    expect(parseSettings(back.settings)).toEqual(custom);
  });

  it('reads autorun and ignores unknown keys; leaves validation to parseSettings', () => {
    const r = parseRunQuery('?model=demo:tiny&autorun=1&bits=3&foo=bar');
    expect(r.autorun).toBe(true);
    expect(r.target.model).toBe('demo:tiny');
    expect(r.settings).toEqual({ bits: '3' });
    expect(() => parseSettings(r.settings)).toThrow(/setting bits/);
  });

  it('carries GPTQ, act-order, damp and the calibration (source, samples × seqlen, seed) for GPTQ runs only', () => {
    const gptq: QuantSettings = { ...DEFAULT_SETTINGS, method: 'gptq', actOrder: false, damp: 0.05 };
    const calib: CalibrationSpec = { source: 'wikitext-2-raw-v1', samples: 64, seqlen: 256, seed: 7 };
    const q = runQuery({ model: 'demo:x' }, gptq, calib);
    expect(q).toContain('&method=gptq&actorder=0&damp=0.05&calib=wikitext-2-raw-v1&csamples=64&cseqlen=256&cseed=7');
    const back = parseRunQuery(q);
    expect(parseSettings(back.settings)).toEqual(gptq);
    expect(parseCalibrationSpec(back.calibration)).toEqual(calib);
    // A dropped file travels by name only; the spec says so.
    const file = parseRunQuery(runQuery({ model: 'm' }, gptq, { ...calib, source: 'file:my calib.json' }));
    expect(file.calibration.source).toBe('file:my calib.json');
    // RTN: calibration and GPTQ's knobs do not change the bytes, so they are not written.
    const rtn = runQuery({ model: 'm' }, DEFAULT_SETTINGS, calib);
    expect(rtn).not.toMatch(/calib|actorder|damp/);
    expect(parseRunQuery(rtn).calibration).toEqual({});
  });

  it('validates the calibration spec: defaults 128 × 512 seed 0, specific errors', () => {
    expect(parseCalibrationSpec({ source: 'demo' })).toEqual({ source: 'demo', samples: 128, seqlen: 512, seed: 0 });
    expect(() => parseCalibrationSpec({ source: 'demo', samples: '0' })).toThrow(/calibration samples: got "0"; expected an integer from 1 to 65536/);
    expect(() => parseCalibrationSpec({ source: 'demo', seqlen: '12.5' })).toThrow(/calibration seqlen/);
    expect(() => parseCalibrationSpec({ source: 'demo', seed: '-1' })).toThrow(/calibration seed/);
    expect(() => parseCalibrationSpec({ source: '' })).toThrow(/calibration source/);
  });

  it('carries fitted input scales (link key inscales, CLI --input-scales); uniform, the default, writes neither', () => {
    const fitted: QuantSettings = { ...DEFAULT_SETTINGS, inputScales: 'fitted' };
    const q = runQuery({ model: 'demo:x' }, fitted);
    expect(q).toBe('?model=demo%3Ax&bits=4&scheme=sp&clip=mse&rotation=full&block=64&seed=0&embed=1&dtype=f16&method=rtn&inscales=fitted');
    expect(parseSettings(parseRunQuery(q).settings)).toEqual(fitted);
    expect(runQuery({ model: 'demo:x' }, DEFAULT_SETTINGS)).not.toMatch(/inscales/);
    expect(cliCommand('demo:x', fitted)).toMatch(/ --dtype f16 --input-scales fitted$/);
    expect(cliCommand('demo:x', DEFAULT_SETTINGS)).not.toMatch(/input-scales/);
    expect(parseRunQuery('?inscales=rowwise').settings).toEqual({ inputScales: 'rowwise' });
    expect(() => parseSettings(parseRunQuery('?inscales=rowwise').settings)).toThrow(/setting input-scales: got "rowwise"/);
  });

  it('never carries a token', () => {
    const q = runQuery({ model: 'org/private', revision: 'main' }, DEFAULT_SETTINGS);
    expect(q).not.toMatch(/token|hf_/i);
  });
});

describe('codebook, W8 budget and bits overrides in the link', () => {
  const calib: CalibrationSpec = { source: 'demo', samples: 16, seqlen: 128, seed: 0 };

  it('written when not the default, and round-trip with the calibration a 4-bit budget needs', () => {
    const s: QuantSettings = { ...DEFAULT_SETTINGS, codebook: 'learned', w8Budget: 0.1, bitsOverride: 'layers.0.*=8,down_proj=8' };
    const q = runQuery({ model: 'tinystories-260k' }, s, calib);
    expect(q).toBe('?model=tinystories-260k&bits=4&scheme=sp&clip=mse&rotation=full&block=64&seed=0&embed=1&dtype=f16&method=rtn' +
      '&codebook=learned&w8budget=0.1&bitsoverride=layers.0.*%3D8%2Cdown_proj%3D8&calib=demo&csamples=16&cseqlen=128&cseed=0');
    const back = parseRunQuery(q);
    expect(back.settings).toEqual(expect.objectContaining({ codebook: 'learned', w8Budget: '0.1', bitsOverride: 'layers.0.*=8,down_proj=8' }));
    expect(parseSettings(back.settings)).toEqual(s);
    expect(parseCalibrationSpec(back.calibration)).toEqual(calib);
  });

  it('defaults are not written (an older link means the same bytes), nor anything at 16 bits', () => {
    expect(runQuery({ model: 'm' }, DEFAULT_SETTINGS, calib)).not.toMatch(/codebook|w8budget|bitsoverride|calib/);
    expect(runQuery({ model: 'm' }, { ...DEFAULT_SETTINGS, bits: 16, codebook: 'learned', w8Budget: 0.2, bitsOverride: 'down_proj=8' }, calib)).not.toMatch(/codebook|w8budget|bitsoverride|calib/);
  });

  it('a budget at 8 bits is carried (it is recorded) but needs no calibration', () => {
    const s: QuantSettings = { ...DEFAULT_SETTINGS, bits: 8, w8Budget: 0.05 };
    expect(usesCalibration(s)).toBe(false);
    const q = runQuery({ model: 'm' }, s, calib);
    expect(q).toContain('&w8budget=0.05');
    expect(q).not.toContain('calib');
    expect(parseSettings(parseRunQuery(q).settings)).toEqual(s);
  });

  it('a bad value is named per key; the others are kept', () => {
    const r = parseSettingsByKey(parseRunQuery('?model=m&bits=4&codebook=learned&w8budget=2&bitsoverride=nope%3D5').settings);
    expect(r.settings.codebook).toBe('learned');
    expect(r.settings.w8Budget).toBe(0);
    expect(r.problems.map((p) => p.key)).toEqual(['w8Budget', 'bitsOverride']);
    expect(r.problems[1].message).toContain('bits "5" must be 4, 8 or 16');
  });
});

describe('usesCalibration', () => {
  it('GPTQ at 4 or 8 bits, a W8 budget at 4 bits only, never at 16 bits', () => {
    expect(usesCalibration(DEFAULT_SETTINGS)).toBe(false);
    expect(usesCalibration({ ...DEFAULT_SETTINGS, method: 'gptq' })).toBe(true);
    expect(usesCalibration({ ...DEFAULT_SETTINGS, method: 'gptq', bits: 8 })).toBe(true);
    expect(usesCalibration({ ...DEFAULT_SETTINGS, method: 'gptq', bits: 16 })).toBe(false);
    expect(usesCalibration({ ...DEFAULT_SETTINGS, w8Budget: 0.1 })).toBe(true);
    expect(usesCalibration({ ...DEFAULT_SETTINGS, w8Budget: 0.1, bits: 8 })).toBe(false);
    expect(usesCalibration({ ...DEFAULT_SETTINGS, w8Budget: 0.1, bits: 16 })).toBe(false);
    expect(usesCalibration({ ...DEFAULT_SETTINGS, bitsOverride: 'down_proj=8', codebook: 'learned' })).toBe(false);
  });
});

describe('cliCommand', () => {
  it('names the codebook, the budget (RTN: --method rtn, since --calib alone means GPTQ) and quoted overrides', () => {
    const s: QuantSettings = { ...DEFAULT_SETTINGS, codebook: 'learned', w8Budget: 0.1, bitsOverride: 'layers.0.*=8' };
    expect(cliCommand('public/demo/tinystories-260k', s, undefined, { source: 'demo', samples: 16, seqlen: 128, seed: 0 })).toBe(
      'npm run quantize -- --model public/demo/tinystories-260k --out <dir> --bits 4 --scheme sp --rotation full --clip mse --seed 0 --quantize-embeddings true --dtype f16 ' +
        "--method rtn --calib demo --calib-samples 16 --calib-seqlen 128 --calib-seed 0 --codebook learned --w8-budget 0.1 --bits-override 'layers.0.*=8'",
    );
    expect(cliCommand('m', { ...DEFAULT_SETTINGS, method: 'gptq', bitsOverride: 'down_proj=8' }, undefined, { source: 'demo', samples: 16, seqlen: 128, seed: 0 })).toMatch(
      /--method gptq --calib demo .* --act-order true --damp 0\.01 --bits-override down_proj=8$/,
    );
    expect(cliCommand('m', { ...DEFAULT_SETTINGS, bitsOverride: "o'x=8" })).toContain(`--bits-override 'o'\\''x=8'`);
  });

  it('names every byte-relevant flag, the block size only for block rotation', () => {
    expect(cliCommand('Qwen/Qwen2.5-0.5B', DEFAULT_SETTINGS)).toBe(
      'npm run quantize -- --model Qwen/Qwen2.5-0.5B --out <dir> --bits 4 --scheme sp --rotation full --clip mse --seed 0 --quantize-embeddings true --dtype f16',
    );
    expect(cliCommand('public/demo/x', custom, 'abc')).toBe(
      'npm run quantize -- --model public/demo/x --revision abc --out <dir> --bits 8 --scheme per_tensor --rotation block --block-size 32 --clip absmax --seed 42 --quantize-embeddings false --dtype f32',
    );
  });

  it('names GPTQ with its calibration; a dropped file becomes a placeholder path', () => {
    const gptq: QuantSettings = { ...DEFAULT_SETTINGS, method: 'gptq' };
    expect(cliCommand('public/demo/tinystories-260k', gptq, undefined, { source: 'demo', samples: 16, seqlen: 128, seed: 0 })).toBe(
      'npm run quantize -- --model public/demo/tinystories-260k --out <dir> --bits 4 --scheme sp --rotation full --clip mse --seed 0 --quantize-embeddings true --dtype f16 ' +
        '--method gptq --calib demo --calib-samples 16 --calib-seqlen 128 --calib-seed 0 --act-order true --damp 0.01',
    );
    expect(cliCommand('org/m', gptq, undefined, { source: 'file:calib.json', samples: 128, seqlen: 512, seed: 0 })).toContain('--calib <path to calib.json> --calib-samples 128');
  });
});
