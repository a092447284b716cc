import { describe, expect, it } from 'vitest';
import { cliCommand, parseRunQuery, runQuery } from './link';
import { DEFAULT_SETTINGS, parseSettings, type QuantSettings } from './settings';

const custom: QuantSettings = { bits: 8, scheme: 'per_tensor', clip: 'absmax', rotation: 'block', blockSize: 32, seed: 42, quantizeEmbeddings: false, dtype: 'f32', method: 'rtn', actOrder: true, damp: 0.01, codebook: 'uniform', w8Budget: 0, bitsOverride: '' };

describe('runQuery / parseRunQuery', () => {
  it('writes every setting, defaults included, and round-trips', () => {
    const q = runQuery({ model: 'Qwen/Qwen2.5-0.5B' }, DEFAULT_SETTINGS);
    expect(q).toBe('?model=Qwen%2FQwen2.5-0.5B&bits=4&scheme=sp&clip=mse&rotation=full&block=64&seed=0&embed=1&dtype=f16');
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
});
