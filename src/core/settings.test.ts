import { describe, expect, it } from 'vitest';
import { DEFAULT_SETTINGS, parseSettings, validBlockSizes } from './settings';

describe('parseSettings', () => {
  it('fills defaults and keeps the defaults object frozen', () => {
    expect(parseSettings({})).toEqual(DEFAULT_SETTINGS);
    expect(Object.isFrozen(DEFAULT_SETTINGS)).toBe(true);
    expect(parseSettings({})).not.toBe(DEFAULT_SETTINGS);
  });

  it('accepts the string forms of CLI flags and URL parameters', () => {
    expect(parseSettings({ bits: '8', scheme: 'per_tensor', clip: 'absmax', rotation: 'block', blockSize: '32', seed: '7', quantizeEmbeddings: '0', dtype: 'f32', method: 'gptq', actOrder: 'false', damp: '0.05', codebook: 'learned', w8Budget: '10%', bitsOverride: ' down_proj=8 ', inputScales: 'fitted' })).toEqual({
      bits: 8, scheme: 'per_tensor', clip: 'absmax', rotation: 'block', blockSize: 32, seed: 7, quantizeEmbeddings: false, dtype: 'f32', method: 'gptq', actOrder: false, damp: 0.05, codebook: 'learned', w8Budget: 0.1, bitsOverride: 'down_proj=8', inputScales: 'fitted',
    });
    expect(DEFAULT_SETTINGS.inputScales).toBe('uniform');
    expect(parseSettings({ quantizeEmbeddings: 'true' }).quantizeEmbeddings).toBe(true);
    expect(parseSettings({ quantizeEmbeddings: false }).quantizeEmbeddings).toBe(false);
    expect(parseSettings({ bits: 16 }).bits).toBe(16);
  });

  it.each([
    [{ bits: '3' }, /setting bits: got "3"; expected 4, 8 or 16/],
    [{ scheme: 'per_channel' }, /setting scheme: got "per_channel"; expected per_tensor or sp/],
    [{ clip: 'max' }, /setting clip/],
    [{ method: 'awq' }, /setting method: got "awq"; expected rtn or gptq/],
    [{ actOrder: 'yes' }, /setting act-order: got "yes"; expected true or false/],
    [{ damp: '2' }, /setting damp: got "2"; expected a number from 0 to 1/],
    [{ damp: '' }, /setting damp/],
    [{ codebook: 'kmeans' }, /setting codebook: got "kmeans"; expected uniform or learned/],
    [{ w8Budget: '1.5' }, /setting w8-budget: got "1.5"/],
    [{ inputScales: 'per_column' }, /setting input-scales: got "per_column"; expected uniform or fitted/],
    [{ bitsOverride: 'down_proj=5' }, /--bits-override entry 1 \("down_proj=5"\): bits "5" must be 4, 8 or 16/],
    [{ rotation: 'half' }, /setting rotation: got "half"; expected full, block or none/],
    [{ blockSize: '48' }, /setting block-size: got "48"; expected a power of two/],
    [{ blockSize: '1' }, /setting block-size/],
    [{ blockSize: 131072 }, /setting block-size/],
    [{ seed: '-1' }, /setting seed: got "-1"; expected an integer from 0 to 4294967295/],
    [{ seed: '1.5' }, /setting seed/],
    [{ quantizeEmbeddings: 'yes' }, /setting quantize-embeddings: got "yes"; expected true or false/],
    [{ dtype: 'bf16' }, /setting dtype/],
  ])('rejects %o', (raw, msg) => {
    expect(() => parseSettings(raw as Record<string, unknown>)).toThrow(msg);
  });
});

describe('validBlockSizes', () => {
  it('lists every power of two from 2 that divides the hidden size', () => {
    expect(validBlockSizes(92)).toEqual([2, 4]);
    expect(validBlockSizes(896)).toEqual([2, 4, 8, 16, 32, 64, 128]); // Qwen2.5-0.5B
    expect(validBlockSizes(1536)).toEqual([2, 4, 8, 16, 32, 64, 128, 256, 512]); // 1.5B
    expect(validBlockSizes(64)).toEqual([2, 4, 8, 16, 32, 64]);
    expect(validBlockSizes(7)).toEqual([]);
    expect(validBlockSizes(16384)).toEqual([2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096]);
  });
});
