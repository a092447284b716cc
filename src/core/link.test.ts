import { describe, expect, it } from 'vitest';
import { cliCommand, parseCalibrationSpec, parseRunQuery, runQuery, type CalibrationSpec } from './link';
import { DEFAULT_SETTINGS, parseSettings, type QuantSettings } from './settings';

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

describe('cliCommand', () => {
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
